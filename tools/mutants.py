#!/usr/bin/env python
"""Plant one-line bugs, one at a time, in a scratch copy of the repository and see whether the tests catch them.

    python tools/mutants.py                 # every mutant below, each against the tests that cover its code
    python tools/mutants.py --list          # what each mutant changes, and where
    python tools/mutants.py search_edit     # some of them, by name
    python tools/mutants.py --suite quick   # each against the whole quick loop instead (slower)

A mutant is a change of one line of the package, the way a real bug would change it: a flipped comparison, a dropped
term, a sum for a mean. It is made both in the generated module (`clip_sbir/*.py`, what the other tests import) and
in the notebook cell it is exported from (what that notebook's own tests run). For each, the tool copies the repository's tracked files to a
scratch folder, applies the change (refusing a mutant whose line is no longer there, so the list cannot rot
silently), and runs pytest there with that copy of the package first on the path and a fresh cache folder. A mutant
is *killed* when a test fails, and *survives* when every test passes: a surviving mutant is a hole in the tests, to
be closed by a test that fails on it. The tool exits 1 when any survives.

By default each mutant runs the test files that cover the code it changes (`tests`), as a reviewer would, stopping at
the first failure; `--suite quick` and `--suite full` run `bash tools/test.sh`'s quick loop or the whole suite
instead. It is not part of CI (about ten minutes for the list); run it after changing what a mutant touches, and add
a mutant when a bug slips past the tests.
"""
from __future__ import annotations
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

@dataclass(frozen=True)
class Mutant:
    name: str      # how to pick it on the command line
    file: str      # a module of the package, relative to the repository
    old: str       # the exact text changed (it must occur once)
    new: str       # what it becomes
    tests: tuple   # pytest node ids or files that cover it
    what: str      # the bug, in words

MUTANTS = [
    Mutant('loss_margin', 'clip_sbir/losses.py', "out = {'triplet': F.relu(cfg.margin + delta).mean()}",
           "out = {'triplet': F.relu(cfg.margin - delta).mean()}", ('tests/test_notebooks.py::test_notebook[02_losses.ipynb]',),
           "the objective's triplet term pulls the negative closer: [mu - delta]_+"),
    Mutant('loss_weight', 'clip_sbir/losses.py', "total = total + cfg.lambda_div * out['div']", "total = total + cfg.lambda_ps * out['div']",
           ('tests/test_notebooks.py::test_notebook[02_losses.ipynb]',), "L_delta weighted by lambda_ps instead of lambda_div"),
    Mutant('kl_direction', 'clip_sbir/losses.py', "kl = (logp.exp()[:, None] * (logp[:, None] - logp[None, :])).sum(-1)",
           "kl = (logp.exp()[None, :] * (logp[:, None] - logp[None, :])).sum(-1)", ('tests/test_notebooks.py::test_notebook[02_losses.ipynb]',),
           "Sgarro's KL weighted by the wrong distribution"),
    Mutant('map_voc', 'clip_sbir/metrics.py', "out = {'mAP@all': prec.mean(1), 'mAP@all_voc': right_max(prec).mean(1)}",
           "out = {'mAP@all': prec.mean(1), 'mAP@all_voc': prec.mean(1)}", ('tests/test_notebooks.py::test_notebook[05_metrics.ipynb]',),
           "the VOC-interpolated mAP without its interpolation"),
    Mutant('precision_at_k', 'clip_sbir/metrics.py', "for k in k_prec: out[f'P@{k}'] = f64((ranks <= k).sum(1)) / k",
           "for k in k_prec: out[f'P@{k}'] = f64((ranks < k).sum(1)) / k", ('tests/test_notebooks.py::test_notebook[05_metrics.ipynb]',),
           "P@K counts the top K-1"),
    Mutant('best_keeps_worst', 'clip_sbir/train.py', "if st['best'] is None or m[key] > st['best'][key]:",
           "if st['best'] is None or m[key] < st['best'][key]:",
           ('tests/test_protocol.py::test_metrics_json_scores_the_saved_weights_and_best_pt_the_best_validation',),
           "best.pt keeps the worst validation step"),
    Mutant('grads_summed', 'clip_sbir/dist.py', "    flat /= env.world\n", "    pass\n",
           ('tests/test_train.py::test_two_processes_stay_identical_and_gather_the_evaluation',),
           "processes sum their gradients instead of averaging them"),
    Mutant('metrics_are_baseline', 'clip_sbir/run.py', "'metrics': strip(metrics), 'baseline': strip(final['baseline']),",
           "'metrics': strip(final['baseline']), 'baseline': strip(final['baseline']),",
           ('tests/test_protocol.py::test_metrics_json_scores_the_saved_weights_and_best_pt_the_best_validation',),
           "metrics.json reports frozen CLIP as the trained model's result"),
    Mutant('cache_ignores_code', 'clip_sbir/eval.py', "_digest(cache_key, code_fingerprint(), prec,", "_digest(cache_key, prec,",
           ('tests/test_cache.py',), "the feature cache outlives an edit of the encoding code"),
    Mutant('fg_gallery_all', 'clip_sbir/eval.py', "    return ok & split.photo_basic if split.photo_basic is not None else ok",
           "    return ok", ('tests/test_notebooks.py::test_notebook[05a_eval.ipynb]',),
           "fine-grained galleries rank the extended photos too"),
    Mutant('search_edit', 'clip_sbir/search.py', "if old is not None and not rehash and tuple(old[1][1:5]) == st:", "if old is not None and not rehash:",
           ('tests/test_search.py::test_update_embeds_only_what_changed_and_refuses_another_model',),
           "an update keeps the features of a photo edited in place"),
    Mutant('search_drops_previous', 'clip_sbir/search.py', "    man['previous'] = sorted(_data_files(old) - now)", "    man['previous'] = []",
           ('tests/test_notebooks.py::test_notebook[11a_search.ipynb]',), "an update deletes the files an index opened before it still reads"),
    Mutant('search_guard_prefix', 'clip_sbir/search.py', "    return base in _OWN or _DATA.fullmatch(base) is not None",
           "    return base in _OWN or base.split('-')[0] in ('features', 'table', 'approx')",
           ('tests/test_notebooks.py::test_notebook[11a_search.ipynb]',), "a user's features-*.npy is taken for an index file"),
    Mutant('knn_batch_order', 'clip_sbir/knn.py', "    o = np.lexsort((cand, -s))[:k]                                 # descending score, then ascending index",
           "    o = np.lexsort((-cand, -s))[:k]                                # descending score, then ascending index",
           ('tests/test_notebooks.py::test_notebook[11_knn.ipynb]',), "equal scores in reverse gallery order"),
    Mutant('knn_nan_ranked', 'clip_sbir/knn.py', "    ok = np.isfinite(s)\n", "    ok = np.ones(len(s), bool)\n",
           ('tests/test_notebooks.py::test_notebook[11_knn.ipynb]',), "an unreadable photo (NaN row) takes a place in the results"),
    Mutant('prompts_prepended', 'clip_sbir/models/prompts.py', "return torch.cat([x, p] if self.position == 'append' else [p, x], dim=1)",
           "return torch.cat([p, x] if self.position == 'append' else [x, p], dim=1)",
           ('tests/test_notebooks.py::test_notebook[01_models.prompts.ipynb]',), "prompts go before the class token, against the code"),
    Mutant('sampler_unbalanced', 'clip_sbir/data/samplers.py', "cls = rng.permutation(np.concatenate([tight, pick]))",
           "cls = rng.permutation(np.concatenate([pick, pick]))",
           ('tests/test_notebooks.py::test_notebook[03a_data.samplers.ipynb]',), "a batch's classes drawn twice, the tight ones dropped"),
    Mutant('cost_without_shuffled_views', 'clip_sbir/run.py', "per_step = cfg.batch_size * (6 if cfg.mode == 'fg' and cfg.lambda_ps > 0 else 3)",
           "per_step = cfg.batch_size * 3", ('tests/test_notebooks.py::test_notebook[06_run.ipynb]',
                                             'tests/test_paper_configs.py::test_paper_table_is_current'),
           "run_cost forgets the three patch-shuffled views a fine-grained step encodes"),
    Mutant('cost_misses_last_validation', 'clip_sbir/run.py', "if e == epochs_run - 1 or (cfg.eval_every", "if (cfg.eval_every",
           ('tests/test_notebooks.py::test_notebook[06_run.ipynb]',), "run_cost forgets the validation fit makes when the run stops"),
]

def scratch_copy(dest:Path):
    "The repository's tracked files (and untracked, not ignored ones) copied to `dest`"
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for f in filter(None, files.split('\0')):
        src = ROOT/f
        if not src.is_file(): continue
        (dest/f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest/f)
    for shared in ('.cache/synthetic',):                   # generated worlds (keyed by the generator's fingerprint), shared
        if (ROOT/shared).is_dir(): (dest/shared).parent.mkdir(parents=True, exist_ok=True); (dest/shared).symlink_to(ROOT/shared)

def apply(m:Mutant, root:Path):
    """Change the mutant's line in the copy at `root`: in the module and in the notebook it is exported from (whose cells
    the notebook tests run), as a bug written in the notebook and exported would; an error when the text is not there once"""
    f = root/m.file
    text = f.read_text()
    if text.count(m.old) != 1: raise SystemExit(f"mutant {m.name}: {m.file} holds its line {text.count(m.old)} times, expected once: update the list")
    f.write_text(text.replace(m.old, m.new))
    src = re.search(r'File to edit: (\S+\.ipynb)', text)
    if src is None: return
    nb_path = (f.parent/src.group(1)).resolve()
    nb = json.loads(nb_path.read_text())
    cells = [c for c in nb['cells'] if c['cell_type'] == 'code' and m.old in ''.join(c['source'])]
    if len(cells) != 1: raise SystemExit(f"mutant {m.name}: {nb_path.name} holds its line in {len(cells)} cells, expected one: update the list")
    cells[0]['source'] = ''.join(cells[0]['source']).replace(m.old, m.new).splitlines(keepends=True)
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')

def pytest_args(m:Mutant, suite:str)->list:
    if suite == 'full': return ['tests', '-n', '2', '--dist', 'loadgroup', '-x']
    if suite == 'quick': return ['tests', '-m', 'not slow', '-n', '2', '--dist', 'loadgroup', '-x']
    return list(m.tests) + ['-x']

def run(m:Mutant, suite:str, work:Path)->tuple[bool, float, str]:
    "(killed, seconds, the last lines of pytest's output) for one mutant"
    root = work/m.name
    scratch_copy(root)
    apply(m, root)
    cache = Path(tempfile.mkdtemp(prefix='cache_', dir=work))
    (cache/'synthetic').symlink_to(ROOT/'.cache'/'synthetic')
    env = {**os.environ, 'PYTHONPATH': str(root), 'CLIP_SBIR_TEST_CACHE': str(cache), 'CLIP_SBIR_CACHE': str(cache),
           'MPLBACKEND': 'Agg', 'PYTHONHASHSEED': '0', 'OMP_NUM_THREADS': '1',
           'CLIP_SBIR_OUTPUTS': 'run'}   # notebooks: their own tests only; a changed printed number is not a failed check of what is right
    t = time.perf_counter()
    r = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', *pytest_args(m, suite)], cwd=root, env=env,
                       capture_output=True, text=True)
    tail = '\n'.join((r.stdout + r.stderr).strip().splitlines()[-3:])
    if r.returncode not in (0, 1): raise SystemExit(f"mutant {m.name}: pytest could not run (exit {r.returncode}):\n{tail}")
    return r.returncode == 1, time.perf_counter() - t, tail

def main(argv=None)->int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('names', nargs='*', help="mutants to run (default: all)")
    ap.add_argument('--suite', choices=('covering', 'quick', 'full'), default='covering',
                    help="covering: each mutant's own tests (default) | quick: the quick loop | full: every test")
    ap.add_argument('--list', action='store_true', help="list the mutants and exit")
    a = ap.parse_args(argv)
    known = {m.name: m for m in MUTANTS}
    bad = [n for n in a.names if n not in known]
    if bad: ap.error(f"unknown mutant(s) {', '.join(bad)}: expected some of {', '.join(known)}")
    picked = [known[n] for n in a.names] if a.names else MUTANTS
    if a.list:
        for m in picked: print(f"{m.name:20s} {m.file:28s} {m.what}")
        return 0
    if not (ROOT/'.cache'/'synthetic').is_dir(): raise SystemExit("no generated world in .cache/synthetic: run bash tools/test.sh --quick once first")
    survived = []
    with tempfile.TemporaryDirectory(prefix='mutants_') as work:
        for m in picked:
            killed, secs, tail = run(m, a.suite, Path(work))
            print(f"{'killed  ' if killed else 'SURVIVED'} {m.name:20s} {secs:5.0f} s  {m.what}", flush=True)
            if not killed:
                survived.append(m.name)
                print('    ' + tail.replace('\n', '\n    '))
    print(f"{len(picked) - len(survived)} of {len(picked)} mutants killed" + (f"; surviving: {', '.join(survived)}" if survived else ''))
    return 1 if survived else 0

if __name__ == '__main__': sys.exit(main())
