#!/usr/bin/env python
"""The library notebooks carry their outputs, and the outputs are current.

    python tools/nb_outputs.py --write                       # execute, keep what teaches, write it into the notebooks
    python tools/nb_outputs.py --check                       # execute, fail if an output changed or a notebook is too big
    python tools/nb_outputs.py --check nbs/02_losses.ipynb   # one notebook
    python tools/nb_outputs.py --run                         # execute only: the notebooks' own tests, outputs not compared

Every notebook `nbdev_test` runs is executed here the way `nbdev_test` runs it (execnb's shell, in the notebook's
folder, `tst_flags` cells, `skip_exec` notebooks and `.notest` folders skipped), on one thread each (the same
floating-point sums on any machine), so this one step is both the notebooks' tests and the
outputs' check. The library notebooks (`nbs/NN*.ipynb`) keep the outputs a reader learns from: printed values,
tables, figures at 72 dpi; not stderr (progress bars, warnings), not the outputs of `#| hide` cells, not widget
views (they need a live kernel). `--check` then re-executes them and compares cell by cell: text must be equal up to
timings, memory addresses and temporary paths, and every number exactly as printed (a cell listed in `VARIES`, with
the reason, may differ by one unit of the last printed digit; none is listed); images equal up to a mean pixel
difference of 1/255. It names every cell that differs and every notebook over the size cap.
"""
from __future__ import annotations
import argparse, base64, io, json, math, multiprocessing, os, re, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE_CAP = 300_000          # bytes per library notebook
KEEP_MIME = ('text/plain', 'text/markdown', 'text/html', 'image/png', 'image/svg+xml', 'text/latex')

# Each notebook runs in a process of its own, forked from a server that has imported these once (multiprocessing's
# forkserver): a clean process per notebook, as before, without paying about 3 s of torch and open_clip imports each time.
PRELOAD = ['torch', 'torchvision', 'open_clip', 'matplotlib.pyplot', 'pandas', 'execnb.shell', 'nbdev.processors', 'clip_sbir.run']

def is_library(fn:Path) -> bool:
    "The numbered notebooks that define the package; the others (index, jobs, experiments) are only executed"
    return fn.parent.name == 'nbs' and re.match(r'\d\d', fn.name) is not None

# The experiment notebooks carry outputs too, drawn from the committed results (`-p from_results docs/figures`) in
# seconds, nothing trained: these parameters are set after their parameters cell. `fig_dir` is where the figures and
# tables they draw go: docs/figures itself with --write (README shows those files), a scratch folder with --check, whose
# files are then compared with docs/figures' (so README's figures are current too).
FIGS = ROOT/'docs'/'figures'
RENDERED = {'nbs/experiments/ablations.ipynb', 'nbs/experiments/baselines.ipynb'}
# The main job's notebook carries the outputs of one recorded run (`--write nbs/train.ipynb`, though nbdev_test skips
# it): it trains for minutes, so --check leaves it alone.
RECORDED = {'nbs/train.ipynb'}

def _rel(fn:Path) -> str: return fn.relative_to(ROOT).as_posix() if fn.is_relative_to(ROOT) else str(fn)

def is_rendered(fn:Path) -> bool: return _rel(fn) in RENDERED

def carries_outputs(fn:Path) -> bool: return is_library(fn) or is_rendered(fn) or _rel(fn) in RECORDED

# --- executing -------------------------------------------------------------------------------------------------

def execute(fn:str, fig_dir:str|None=None, record:bool=False) -> tuple[str, bool, float, str, list|None]:
    "Run notebook `fn` as nbdev_test does (a rendered one from the committed results, drawing into `fig_dir`); return (fn, ok, seconds, error text, outputs by original cell index)"
    os.environ['IN_TEST'] = '1'
    os.environ.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')   # one thread: the same sums in the same order on any machine
    from execnb.shell import CaptureShell
    from fastcore.basics import str2bool
    from fastcore.xtras import working_directory
    from nbdev.config import get_config
    from nbdev.processors import NBProcessor, FrontmatterProc
    fn = Path(fn)
    sys.path.insert(0, str(get_config().config_path))   # as nbdev_test: the repository before the installed package
    flags = set(get_config().tst_flags.split())
    nb = NBProcessor(fn, procs=FrontmatterProc, process=True).nb
    if str2bool(getattr(nb, 'frontmatter_', {}).get('skip_exec', False)) and not record: return str(fn), True, 0., 'skipped (skip_exec)', None
    params = next((c for c in nb.cells if 'parameters' in c.get('metadata', {}).get('tags', [])), None)
    if is_rendered(fn):                     # papermill's way: the parameters cell, then these values
        params.source += f"\nfrom_results = {str(FIGS)!r}\nfig_dir = {str(fig_dir or FIGS)!r}"
    if record:                              # the run's files go to a scratch folder, not beside the notebook
        import tempfile
        params.source += f"\nout_dir = {tempfile.mkdtemp(prefix='recorded_run_')!r}"

    def no_eval(cell):                      # nbdev_test's rule for cells it does not run
        if cell.cell_type != 'code' or 'nbdev_export' + '(' in cell.source: return True
        d = getattr(cell, 'directives_', {}) or {}
        if d.get('eval:', [''])[0].lower() == 'false': return True
        return bool(flags & d.keys())

    start = time.time()
    k = CaptureShell(fn, mpl_format='png')
    k._run("import matplotlib as _mpl\n_mpl.rcParams['figure.dpi'] = 72\n_mpl.rcParams['savefig.dpi'] = 'figure'\n"
           "import torch as _torch\n_torch.set_num_threads(1)")
    try:
        with working_directory(fn.parent): k.run_all(nb, exc_stop=True, preproc=no_eval)
    except BaseException:
        return str(fn), False, time.time() - start, k.prettytb(fname=fn), None
    outs = {}
    for c in nb.cells:
        if c.cell_type == 'code' and hasattr(c, 'idx_'):
            d = getattr(c, 'directives_', {}) or {}
            outs[c.idx_] = [] if 'hide' in d else teaching(list(c.get('outputs', [])))
    return str(fn), True, time.time() - start, '', [outs.get(i) for i in range(max(outs, default=-1) + 1)]

def _text(v) -> str: return ''.join(v) if isinstance(v, list) else str(v)

def _lines(s:str) -> list[str]: return s.splitlines(keepends=True)   # nbformat's multiline strings

def teaching(outputs:list) -> list:
    "The outputs a reader learns from, as plain JSON: no stderr, no widget views, no execution counts"
    res = []
    for o in outputs:
        o = json.loads(json.dumps(o, default=str))
        t = o['output_type']
        if t == 'stream' and o['name'] == 'stderr': continue
        if t in ('display_data', 'execute_result'):
            if 'application/vnd.jupyter.widget-view+json' in o['data']: continue   # a widget: its text form teaches nothing
            data = {m: v for m, v in o['data'].items() if m in KEEP_MIME}
            if not data: continue
            o = {'output_type': 'display_data' if t == 'display_data' else 'execute_result', 'data': data, 'metadata': {}}
            if t == 'execute_result': o['execution_count'] = None
        if t == 'stream': o = {'output_type': 'stream', 'name': 'stdout', 'text': _lines(_text(o['text']))}
        if 'data' in o: o['data'] = {m: v if m == 'image/png' else _lines(_text(v)) for m, v in o['data'].items()}
        res.append(o)
    return res

# --- comparing ----------------------------------------------------------------------------------------------------

_NUM = re.compile(r'[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?')
_NOISE = [(re.compile(r' at 0x[0-9a-fA-F]+>'), '>'),                                        # addresses in reprs (nbdev_clean drops them)
          (re.compile(r'0x[0-9a-fA-F]{6,}'), '0x?'),                                          # other memory addresses
          (re.compile(r'/tmp/[\w.\-/]+'), '/tmp/?'),                                        # temporary folders
          (re.compile(r"(\b\w*(?:seconds|secs|_time|wall_s)['\"]?\s*[:=]\s*)[-+\d.eE]+"), r'\1<time>'),   # 'seconds': 0.108
          (re.compile(r'\b\d+(?:\.\d+)?\s?(?:ms|µs|us|ns|s|sec|seconds|min|it/s|s/it|images/s|queries/s)\b'), '<time>')]


def _skeleton(s:str) -> tuple[str, list[str]]:
    for rx, rep in _NOISE: s = rx.sub(rep, s)
    return _NUM.sub('#', s), _NUM.findall(s)

def _decimals(s:str) -> int:
    "Digits printed after the point ('0.1234' -> 4; integers and exponent forms -> 0)"
    return len(s.split('.')[1]) if '.' in s and 'e' not in s.lower() else 0

# Cells whose printed numbers may differ by one unit of their last digit between machines, and why; every other
# number must be printed exactly as committed. Empty: with constraints/dev.txt's versions and one thread per notebook
# (execute), every library notebook prints the same digits on every machine this check has run on.
VARIES: dict[tuple[str, str], str] = {}   # (notebook, cell id) -> why

def _close(a:str, b:str, slack:int=0) -> bool:
    "Two printed numbers are the same as printed: equal, or within `slack` units of the last printed digit; integers and exponent forms exactly"
    if a == b: return True   # the same characters: also what overflows to inf ('9969e850' in a hex digest)
    x, y = float(a), float(b)
    if not (math.isfinite(x) and math.isfinite(y)): return False   # different characters that overflow: not the same number
    digits = max(_decimals(a), _decimals(b))
    if not digits: return x == y
    return abs(x - y) <= slack * 1.01 * 10 ** -digits

def same_text(a:str, b:str, slack:int=0) -> bool:
    "Equal up to timings, addresses and temporary paths; every number as printed (up to `slack` units of its last digit)"
    (sa, na), (sb, nb_) = _skeleton(a), _skeleton(b)
    return sa == sb and len(na) == len(nb_) and all(_close(x, y, slack) for x, y in zip(na, nb_))

def same_png(a:str, b:str) -> bool:
    "Two base64 PNGs of the same size whose pixels differ by at most 1/255 on average"
    import numpy as np
    from PIL import Image
    ia, ib = (np.asarray(Image.open(io.BytesIO(base64.b64decode(_text(x)))).convert('RGB'), dtype=np.float32) for x in (a, b))
    return ia.shape == ib.shape and float(np.abs(ia - ib).mean()) <= 1.

def same_output(a:dict, b:dict, slack:int=0) -> bool:
    if a['output_type'] != b['output_type']: return False
    if a['output_type'] == 'stream': return same_text(_text(a['text']), _text(b['text']), slack)
    if a['output_type'] == 'error': return a.get('ename') == b.get('ename')
    da, db = a.get('data', {}), b.get('data', {})
    if da.keys() != db.keys(): return False
    return all(same_png(da[m], db[m]) if m == 'image/png' else same_text(_text(da[m]), _text(db[m]), slack) for m in da)

def figure_differences(fig_dir:Path) -> list[str]:
    "One line per figure or table a rendered notebook drew into `fig_dir` that differs from (or is missing in) docs/figures"
    res = []
    for f in sorted(fig_dir.iterdir()):
        old = FIGS/f.name
        if not old.is_file(): res.append(f"docs/figures/{f.name}: drawn by the notebook, not committed"); continue
        if f.suffix == '.png': same = same_png(base64.b64encode(old.read_bytes()).decode(), base64.b64encode(f.read_bytes()).decode())
        else: same = same_text(old.read_text(), f.read_text())
        if not same: res.append(f"docs/figures/{f.name}: differs from what the notebook draws from the committed results")
    return res

def _name(fn:Path) -> str: return str(fn.relative_to(ROOT)) if fn.is_relative_to(ROOT) else str(fn)

def _summary(o:dict) -> str:
    "A short readable form of one output, for messages"
    if o['output_type'] == 'stream': return _text(o['text'])
    d = o.get('data', {})
    if 'image/png' in d: return '<an image>'
    return _text(d.get('text/plain', d.get('text/markdown', str(sorted(d)))))

def _texts(o:dict) -> dict:
    "An output's text forms by kind: a stream's text, or each text mime type of its data"
    if o['output_type'] == 'stream': return {'stream': _text(o['text'])}
    return {m: _text(v) for m, v in o.get('data', {}).items() if m != 'image/png'}

def _first_difference(old:list, new:list, slack:int=0) -> str:
    for a, b in zip(old, new):
        if same_output(a, b, slack): continue
        ta, tb = _texts(a), _texts(b)
        m = next((m for m in ta if m in tb and not same_text(ta[m], tb[m], slack)), None)
        if m is None: return f"committed {_summary(a)[:80]!r}, now {_summary(b)[:80]!r}"
        la, lb = ta[m].splitlines() or [''], tb[m].splitlines() or ['']
        j = next((j for j, (x, y) in enumerate(zip(la, lb)) if not same_text(x, y, slack)), min(len(la), len(lb)))
        get = lambda ls: ls[j][:80] if j < len(ls) else '(nothing)'
        return f"committed {get(la)!r}, now {get(lb)!r}"
    return 'an output was added or removed'

def differences(fn:Path, committed:dict, fresh:list) -> list[str]:
    "One line per code cell whose fresh outputs differ from the committed ones, naming the cell"
    res = []
    for i, c in enumerate(committed['cells']):
        if c['cell_type'] != 'code' or i >= len(fresh) or fresh[i] is None: continue
        old = c.get('outputs', [])
        new = fresh[i]
        slack = 1 if (_rel(fn), c.get('id')) in VARIES else 0
        if len(old) != len(new) or not all(same_output(a, b, slack) for a, b in zip(old, new)):
            first = _text(c['source']).strip().split('\n')[0][:70]
            res.append(f"{_name(fn)}: cell {i} ({first!r}): {len(old)} committed output(s), {len(new)} now; "
                       f"first difference: {_first_difference(old, new, slack)}")
    return res

# --- writing ------------------------------------------------------------------------------------------------------

def write(fn:Path, fresh:list):
    "Put the fresh outputs into the notebook's code cells; nbdev_clean formats a copy, which then replaces the notebook"
    from nbdev.clean import nbdev_clean
    nb = json.loads(fn.read_text())
    for i, c in enumerate(nb['cells']):
        if c['cell_type'] == 'code': c['outputs'] = (fresh[i] if i < len(fresh) and fresh[i] is not None else [])
    tmp = fn.with_name(f'{fn.stem}.{os.getpid()}.tmp.ipynb')   # a crash leaves the notebook whole
    try:
        tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
        nbdev_clean(fname=str(tmp))
        os.replace(tmp, fn)
    finally: tmp.unlink(missing_ok=True)

def notebooks(paths:list[str]) -> list[Path]:
    from nbdev.doclinks import nbglob
    from nbdev.test import _keep_file
    if paths: return [Path(p).resolve() for p in paths]
    picked = [Path(p).absolute() for p in sorted(nbglob(None)) if _keep_file(Path(p), '.notest')]   # nbdev_test's selection
    return picked + [ROOT/r for r in sorted(RENDERED)]                                               # and the rendered ones

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument('--write', action='store_true', help="execute and write the library notebooks' outputs")
    g.add_argument('--check', action='store_true', help="execute and compare with the committed outputs")
    g.add_argument('--run', action='store_true', help="execute only (the notebooks' own tests), e.g. on versions other than constraints/dev.txt's")
    ap.add_argument('paths', nargs='*', help="notebooks (default: every notebook nbdev_test runs, and the experiment notebooks rendered from docs/figures)")
    ap.add_argument('--workers', type=int, default=2)
    a = ap.parse_args(argv)
    os.chdir(ROOT)
    fns = notebooks(a.paths)
    fails, t0 = [], time.time()
    ctx = multiprocessing.get_context('forkserver')
    ctx.set_forkserver_preload(PRELOAD)
    scratch = tempfile.TemporaryDirectory(prefix='nb_outputs_figures_')
    fig_dirs = {str(f): (FIGS if a.write else Path(scratch.name)/f.stem) for f in fns if is_rendered(f)}
    with scratch, ProcessPoolExecutor(a.workers, max_tasks_per_child=1, mp_context=ctx) as ex:
        futs = [ex.submit(execute, str(f), str(fig_dirs.get(str(f), '')) or None, a.write and _rel(f) in RECORDED) for f in fns]
        for fut in as_completed(futs):
            f, ok, secs, err, fresh = fut.result()
            f = Path(f)
            name = _name(f)
            if not ok:
                fails.append(f"{name}: a cell failed\n{err}")
                print(f"FAIL {name} ({secs:.0f} s)", flush=True)
                continue
            note = ''
            if fresh is not None and carries_outputs(f) and not a.run:
                if a.write: write(f, fresh)
                else: fails += differences(f, json.loads(f.read_text()), fresh)
                if is_rendered(f) and a.check: fails += figure_differences(fig_dirs[str(f)])
                size = f.stat().st_size
                note = f", {size / 1e3:.0f} kB"
                if size > SIZE_CAP: fails.append(f"{name}: {size / 1e3:.0f} kB, over the cap of {SIZE_CAP / 1e3:.0f} kB")
            print(f"ok   {name} ({secs:.0f} s{note}){' ' + err if err else ''}", flush=True)
    print(f"{len(fns)} notebooks in {time.time() - t0:.0f} s")
    for m in fails: print('FAIL', m)
    if fails and a.check: print("Outputs are not current: run `python tools/nb_outputs.py --write` and commit, or fix the cell.")
    return 1 if fails else 0

if __name__ == '__main__': sys.exit(main())
