"""Shared pytest fixtures and dataset trees: repository paths, the tests' own cache folder; tests never download anything."""
import os, tempfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault('MPLBACKEND', 'Agg')

def with_worlds(cache:Path)->Path:
    "`cache` (created), whose generated synthetic worlds are those of `ROOT/.cache/synthetic`: keyed by the generator's fingerprint, safe to share"
    worlds = ROOT/'.cache'/'synthetic'
    worlds.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    if not (cache/'synthetic').exists(): (cache/'synthetic').symlink_to(worlds, target_is_directory=True)
    return cache

# The tests never read or write the user's cache (~/.cache/clip_sbir): tools/test.sh hands every step one fresh folder
# (CLIP_SBIR_TEST_CACHE); pytest run alone makes its own. Set before the package is imported; subprocesses inherit it.
os.environ['CLIP_SBIR_CACHE'] = str(with_worlds(Path(os.environ.get('CLIP_SBIR_TEST_CACHE') or tempfile.mkdtemp(prefix='clip_sbir_tests_'))))

def through_config_cell(nb:Path, params:dict)->dict:
    "Run notebook `nb` as papermill would, with `params` injected, in this process, up to and including its config cell (the one calling `notebook_params(globals()...)`); its namespace"
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook
    book = parameterize_notebook(load_notebook_node(str(nb)), params)
    ns = {'In': ['']}
    for cell in book.cells:
        if cell.cell_type != 'code': continue
        ns['In'].append(cell.source)   # IPython's input history, as the kernel keeps it
        exec(compile(cell.source, 'cell', 'exec'), ns)
        if 'notebook_params(globals()' in cell.source: return ns
    raise AssertionError(f"{nb.name} has no config cell")

def private_cache(monkeypatch, tmp_path:Path)->Path:
    "A cache folder of the test's own (no features or indexes from earlier tests), sharing only the generated worlds; beside `tmp_path`, not in it"
    d = with_worlds(Path(tempfile.mkdtemp(prefix=f'{tmp_path.name}_cache_', dir=tmp_path.parent)))
    monkeypatch.setenv('CLIP_SBIR_CACHE', str(d))
    return d

from clip_sbir.data.real import LAYOUTS, fake_tree, split_classes

# Tests that share an expensive fixture (one trained grid, one search world, one built site; session-scoped, so a worker
# keeps it while it runs other tests in between) run in one worker of `pytest -n N --dist loadgroup` (tools/test.sh), so
# each is built once; every other test goes where a worker is free.
SHARED = {'grid', 'world', 'site', 'served'}

def _recorded_seconds()->dict:
    "Each test's seconds in the last committed run (tests/DURATIONS.md, written by tools/test_durations.py); {} without it"
    f = ROOT/'tests'/'DURATIONS.md'
    rows = (l.split('|') for l in (f.read_text().splitlines() if f.is_file() else ()) if l.startswith('| `tests/'))
    return {r[1].strip().strip('`'): float(r[2]) for r in rows if len(r) > 3}

@pytest.hookimpl(tryfirst=True)   # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """Tests sharing an expensive fixture go to one worker (below); and the longest work goes first (the recorded
    seconds of tests/DURATIONS.md, a group counted as its tests' sum), so that no long test starts last while the
    other workers have nothing left to do"""
    group = {}
    for item in items:
        if SHARED & set(getattr(item, 'fixturenames', ())):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
            group[item.nodeid] = item.module.__name__
    secs = _recorded_seconds()
    cost = {}
    for item in items: cost[group.get(item.nodeid, item.nodeid)] = cost.get(group.get(item.nodeid, item.nodeid), 0.) + secs.get(item.nodeid, 0.)
    items.sort(key=lambda item: -cost[group.get(item.nodeid, item.nodeid)])   # stable: equal costs keep pytest's order

@pytest.fixture(scope='session')
def root() -> Path: return ROOT


# Small dataset trees in common layouts, hard links to one tiny image (`fake_tree`)
def corrupt(path:Path, how:str):
    "Replace a (hard-linked) image by a truncated or garbage copy, leaving its other links intact"
    data = path.read_bytes(); path.unlink()
    path.write_bytes(data[:len(data) // 2] if how == 'truncated' else b'not an image at all')

def small_tree(root:Path, dataset:str)->tuple:
    "A small tree of `dataset` in a common layout; returns (split, the unseen classes' folders (sketch, photo) of the first class)"
    split = {'sketchy': 's21', 'tuberlin': 't30_sake', 'quickdraw': 'q30'}[dataset]
    _, te, tr = split_classes(dataset, split)
    layout = {'sketchy': 'sketchy_tx', 'tuberlin': 'sketches_images', 'quickdraw': 'quickdraw_final'}[dataset]
    L, files = LAYOUTS[layout], []
    for i, c in enumerate(te + tr):
        f = c.replace(' ', '_') if layout == 'sketches_images' else c
        n_ph = 3 if c in te else 2
        if dataset == 'sketchy':
            ph = [f'n{2000000 + i:08d}_{1000 + j}.jpg' for j in range(n_ph)]
            sk = [f'{p[:-4]}-{k}.png' for p in ph for k in (1, 2)]
        else:
            ph = [f'n{4000000 + i:08d}_{j}.jpg' for j in range(n_ph)]
            sk = [f'{100 * i + k}.png' for k in range(4)]
        files += [f'{L.sketch[0]}/{f}/{n}' for n in sk] + [f'{L.photo[0]}/{f}/{n}' for n in ph]
    fake_tree(root, files)
    f0 = te[0].replace(' ', '_') if layout == 'sketches_images' else te[0]
    return split, root/L.sketch[0]/f0, root/L.photo[0]/f0

