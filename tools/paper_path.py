#!/usr/bin/env python
"""Reproduce the paper, table by table: the command for each of its results, what the command writes, and what it
costs in images processed, counted from the standard split lists that ship with the tests (`tests/data/splits`).

    python tools/paper_path.py            # writes docs/figures/paper_path.md (README's table) and paper_path.json
    python tools/paper_path.py --check    # exit 1 if either is not what the lists and the commands give now

Each command is parsed with papermill's flags (`-f`, `-y`, `-p`) and the notebook's own parameter defaults, so the
runs it would make are known without running it: the main job's one run, or the experiment notebooks' grids
(`clip_sbir.experiments.method_variants` / `ablation_variants` x seeds, identical runs counted once, as `run_grid`
does). Each run is costed by `clip_sbir.run.run_cost` on a tree of empty images built from the split lists
(`fake_tree`), so the training steps come from the real sampler over the real per-class sketch counts. A training
image is one forward and backward pass, an evaluation image one forward pass: multiply by the images per second
`tools/gpu_check.sh` measures on a GPU to get hours. About 30 s on a 2-core CPU.
"""
import argparse, ast, functools, json, lzma, shlex, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTS = ROOT/'tests'/'data'/'splits'
OUT = ROOT/'docs'/'figures'
ROOTS = {'/data/Sketchy': 'sketchy', '/data/TUBerlin': 'tuberlin', '/data/QuickDraw': 'quickdraw'}

def train(stem:str, root:str)->str:
    return f"papermill nbs/train.ipynb runs/{stem}.ipynb -f configs/{stem}.yaml -p data_root {root}"

def experiment(nb:str, tag:str, root:str, zs:str, fg:str='')->str:
    modes = 'zs,fg' if fg else 'zs'
    files = f"-p zs_params configs/{zs}.yaml" + (f" -p fg_params configs/{fg}.yaml" if fg else '')
    return (f"papermill nbs/experiments/{nb}.ipynb runs/{nb}_{tag}.ipynb -p modes {modes} -p epochs 0 {files} "
            f"-p fig_dir runs/figures/{nb}_{tag} -y \"overrides: {{data_root: {root}}}\"")

TRAIN_WRITES = 'the executed notebook; `runs/{stem}/`: `metrics.json`, `last.pt`, `log.csv`, `curves.png`'
ROWS = [   # (the paper's result, command, what it writes)
    ('ZS-SBIR on Sketchy-ext (S21): ours', train('sketchy_zs', '/data/Sketchy'), TRAIN_WRITES.format(stem='sketchy_zs')),
    ('ZS-SBIR on TU-Berlin-ext (T30): ours', train('tuberlin_zs', '/data/TUBerlin'), TRAIN_WRITES.format(stem='tuberlin_zs')),
    ('ZS-SBIR on QuickDraw-ext (Q30): ours', train('quickdraw_zs', '/data/QuickDraw'), TRAIN_WRITES.format(stem='quickdraw_zs')),
    ('FG-ZS-SBIR on Sketchy (S21): ours', train('sketchy_fg', '/data/Sketchy'), TRAIN_WRITES.format(stem='sketchy_fg')),
    ('Baselines B-FT, B-Lin, B-Deep beside frozen CLIP and ours, Sketchy, ZS and FG; the qualitative retrievals '
     '(supplementary Fig. 4 and 5)', experiment('baselines', 'sketchy', '/data/Sketchy', 'sketchy_zs', 'sketchy_fg'),
     'one folder per run under `runs/experiments/`; in `fig_dir`: `baselines_zs.md`, `baselines_fg.md`, `baselines.png`, '
     '`qualitative_zs.png`, `qualitative_fg.png`, `baselines.csv`'),
    ('Baselines on TU-Berlin-ext', experiment('baselines', 'tuberlin', '/data/TUBerlin', 'tuberlin_zs'),
     'the same, zs only'),
    ('Baselines on QuickDraw-ext', experiment('baselines', 'quickdraw', '/data/QuickDraw', 'quickdraw_zs'),
     'the same, zs only'),
    ('Ablations on Sketchy: each loss term and LayerNorm tuning removed, prompts K, patch grid n (FG), share of seen '
     'classes (ZS)', experiment('ablations', 'sketchy', '/data/Sketchy', 'sketchy_zs', 'sketchy_fg'),
     'runs under `runs/experiments/` (shared with the baselines); in `fig_dir`: `ablations.md`, '
     '`ablations_components.png`, `ablations_sweeps.png`, `ablations.csv`'),
]
NO_TRAIN_LISTS = {'quickdraw'}   # its training lists do not ship: training cost unknown here

def _lists(tmp:Path)->Path:
    out = tmp/'lists'
    for f in LISTS.rglob('*.txt.xz'):
        d = out/f.relative_to(LISTS).with_suffix('')
        d.parent.mkdir(parents=True, exist_ok=True)
        d.write_bytes(lzma.decompress(f.read_bytes()))
    return out

def build_trees(tmp:Path)->dict:
    "dataset -> a tree of empty images, file for file as the split lists give it (placeholders where no list ships)"
    from clip_sbir.data.real import fake_tree, read_filelist, split_classes
    lists, trees = _lists(tmp), {}
    paths = lambda *names: [p for n in names for p, _ in read_filelist(lists/n)]
    trees['sketchy'] = tmp/'sketchy'
    fake_tree(trees['sketchy'], paths(*(f'sketchy_s21/{n}' for n in ('sketch_tx_000000000000_ready_filelist_zero.txt', 'all_photo_filelist_zero.txt',
                                                                      'sketch_tx_000000000000_ready_filelist_train.txt', 'all_photo_filelist_train.txt'))))
    trees['tuberlin'] = tmp/'tuberlin'   # training photos do not ship: two per seen class (a zs epoch counts sketches only)
    fake_tree(trees['tuberlin'], paths('tuberlin_t30_sake/png_ready_filelist_zero.txt', 'tuberlin_t30_sake/ImageResized_ready_filelist_zero.txt',
                                       'tuberlin_t30_sake/png_ready_filelist_train.txt') +
              [f'ImageResized_ready/{c}/n0_{k}.JPEG' for c in split_classes('tuberlin', 't30_sake')[2] for k in range(2)])
    trees['quickdraw'] = tmp/'quickdraw'  # training lists do not ship: one placeholder sketch and photo per seen class
    fake_tree(trees['quickdraw'], paths('quickdraw_q30/sketch_zero.txt', 'quickdraw_q30/all_photo_zero.txt') +
              [f'{k}/{c}/0.{"png" if k == "sketches" else "jpg"}' for c in split_classes('quickdraw', 'q30')[2] for k in ('sketches', 'images')])
    return trees

def parse_command(cmd:str)->tuple:
    "(notebook, parameters) of a papermill command line, with `-f` files read and `-p` values parsed as papermill does"
    from clip_sbir.params import add_param_flags, params_from_flags
    words = shlex.split(cmd)
    assert words[0] == 'papermill', cmd
    ap = add_param_flags(argparse.ArgumentParser())
    return words[1], params_from_flags(ap.parse_args(words[3:]))

@functools.lru_cache(maxsize=None)
def notebook_defaults(nb:str)->dict:
    "The notebook's parameters and their default values, as papermill reads them from its parameters cell"
    import papermill as pm
    return {k: ast.literal_eval(v['default']) for k, v in pm.inspect_notebook(str(ROOT/nb)).items()}

def _with_root(params:dict, trees:dict)->tuple:
    "The parameters with the command's data_root (e.g. /data/Sketchy) pointing at the list tree; and the dataset"
    root = params.get('data_root') or params.get('overrides', {}).get('data_root')
    ds = ROOTS[root]
    if 'data_root' in params: params = {**params, 'data_root': str(trees[ds])}
    if 'overrides' in params: params = {**params, 'overrides': {**params['overrides'], 'data_root': str(trees[ds])}}
    return params, ds

def command_runs(cmd:str, trees:dict)->tuple:
    "(dataset, [SBIRConfig of each distinct run], {mode: passes of the qualitative figures over the test set}) that `cmd` makes"
    from clip_sbir.core import SBIRConfig
    from clip_sbir.experiments import ablation_variants, as_list, grid_configs, method_variants, run_name, run_params
    nb, given = parse_command(cmd)
    given, ds = _with_root(given, trees)
    if nb == 'nbs/train.ipynb': return ds, [SBIRConfig.from_params(given)], {}
    p = {**notebook_defaults(nb), **given}
    runs, qual = {}, {}
    for m in as_list(p['modes'], 'modes'):
        base = run_params(m, p[f'{m}_params'], {**({'epochs': p['epochs']} if p['epochs'] else {}), **p['overrides']})
        if 'baselines' in nb:
            variants = method_variants(as_list(p['methods'], 'methods'), p['method_params'])
            q = method_variants(as_list(p['qual_methods'], 'qual_methods'), p['method_params'])
            variants += [v for v in q if v not in variants]
            qual[m] = len(q)                                       # the qualitative figures encode the test set once per method shown
        else:
            variants = ablation_variants(m, as_list(p[f'{m}_sweeps'], f'{m}_sweeps'), as_list(p['components'], 'components'),
                                         as_list(p['ks'], 'ks', int), as_list(p['grids'], 'grids', int),
                                         as_list(p['fractions'], 'fractions', float), p['fraction_classes_per_batch'])
        for _, _, cfg in grid_configs(variants, base, as_list(p['seeds'], 'seeds', int)):
            runs.setdefault(run_name(cfg), cfg)                    # identical runs: one folder, run once
    return ds, list(runs.values()), qual

def row_cost(cmd:str, trees:dict, data:dict, memo:dict)->dict:
    "A row's numbers; `data` and `memo` carry loaded splits and costs between rows (a run's cost depends on these fields only)"
    from clip_sbir.run import load_run_data, run_cost
    from clip_sbir.eval import query_pool
    ds, cfgs, qual = command_runs(cmd, trees)
    costs, test = [], {}
    for cfg in cfgs:
        key = (cfg.dataset, cfg.split, cfg.gallery, cfg.val_classes, cfg.train_classes, cfg.seed)
        if key not in data: data[key] = load_run_data(cfg)
        ck = (key, cfg.mode, cfg.method == 'frozen', cfg.batch_size, cfg.n_classes_per_batch, cfg.epochs, cfg.max_steps,
              cfg.lambda_ps > 0, cfg.eval_every, cfg.val_queries)
        if ck not in memo: memo[ck] = run_cost(cfg, data[key])
        costs.append(memo[ck])
        test[cfg.mode] = len(query_pool(data[key].test, cfg.mode)) + data[key].test.n_photos   # one model's test images
    out = {'dataset': ds, 'runs': len(cfgs), 'trained_runs': sum(c.method != 'frozen' for c in cfgs),
           'train_images': sum(c['train_images'] for c in costs), 'eval_images': sum(c['eval_images'] for c in costs)
           + sum(n * test[m] for m, n in qual.items()), 'train_known': ds not in NO_TRAIN_LISTS}
    if len(cfgs) == 1: out |= {k: costs[0][k] for k in ('steps_per_epoch', 'epochs', 'images_per_step')}
    if not out['train_known']: out |= {k: None for k in ('train_images', 'steps_per_epoch') if k in out}   # placeholders, not counts
    return out

def _n(x:int)->str:
    return f"{x / 1e6:.1f} M" if x >= 10**6 else f"{x:,}"

def table(rows:list)->str:
    lines = ['| the paper\'s result | command | writes | runs | training images | evaluation images |', '|:--|:--|:--|--:|--:|--:|']
    for (what, cmd, writes), r in zip(ROWS, rows):
        if not r['train_known']: tr = 'not in the shipped lists (*)'
        elif 'steps_per_epoch' in r: tr = f"{r['steps_per_epoch']:,} steps x {r['images_per_step']} x {r['epochs']} epochs = {_n(r['train_images'])}"
        else: tr = f"{_n(r['train_images'])} ({r['trained_runs']} trained runs)"
        lines.append(f"| {what} | `{cmd}` | {writes} | {r['runs']} | {tr} | {_n(r['eval_images'])} |")
    return '\n'.join(lines) + '\n'

def compute()->tuple:
    import clip_sbir.data.real as real
    read = real.load_data
    with tempfile.TemporaryDirectory() as tmp:
        trees = build_trees(Path(tmp))
        data, memo = {}, {}
        real.load_data = functools.lru_cache(maxsize=None)(read)   # `load_run_data` reads a root per seed and share: once here
        try: rows = [row_cost(cmd, trees, data, memo) for _, cmd, _ in ROWS]
        finally: real.load_data = read
    return table(rows), {'rows': [{'result': w, 'command': c, **r} for (w, c, _), r in zip(ROWS, rows)]}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--check', action='store_true', help="fail if docs/figures/paper_path.md or .json is stale")
    ap.add_argument('--out', default=str(OUT), help="folder for paper_path.md and paper_path.json")
    a = ap.parse_args(argv)
    md, rec = compute()
    out = Path(a.out)
    js = json.dumps(rec, indent=1) + '\n'
    if a.check:
        stale = [f.name for f, want in ((out/'paper_path.md', md), (out/'paper_path.json', js)) if not f.is_file() or f.read_text() != want]
        if stale: sys.exit(f"stale: {', '.join(stale)}: run python tools/paper_path.py")
        print("paper_path.md and paper_path.json are current")
        return rec
    out.mkdir(parents=True, exist_ok=True)
    (out/'paper_path.md').write_text(md)
    (out/'paper_path.json').write_text(js)
    print(md)
    return rec

if __name__ == '__main__': main()
