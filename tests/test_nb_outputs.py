"""tools/nb_outputs.py: the library notebooks' outputs are written, and a stale output is caught and named.

The check is run on a notebook made here, whose outputs are known by construction."""
import importlib.util, json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location('nb_outputs', ROOT/'tools'/'nb_outputs.py')
nbo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nbo)

def _nb(cells):
    code = lambda s: {'cell_type': 'code', 'execution_count': None, 'id': f'c{abs(hash(s)) % 10**8}', 'metadata': {}, 'outputs': [], 'source': s}
    return {'cells': [{'cell_type': 'markdown', 'id': 'm0', 'metadata': {}, 'source': '# A test\n> made by test_nb_outputs'}] + [code(s) for s in cells],
            'metadata': {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}}, 'nbformat': 4, 'nbformat_minor': 5}

CELLS = ["print('loss 0.1234')",
         "import sys\nprint('a progress bar', file=sys.stderr)\nprint('kept')",
         "#| hide\nprint('hidden')",
         "class A: pass\nprint(A())\nprint('took 1.25 s')",
         "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(2, 1))\n_ = ax.plot([0, 1], [1, 0])",
         "3 * 7",
         "import ipywidgets\nipywidgets.IntSlider()"]

@pytest.fixture
def notebook(tmp_path):
    fn = tmp_path/'nbs'/'01_example.ipynb'
    fn.parent.mkdir()
    fn.write_text(json.dumps(_nb(CELLS)))
    return fn

def _outputs(fn): return [c.get('outputs', []) for c in json.loads(fn.read_text())['cells']]

def test_written_outputs_teach_and_recheck_clean(notebook):
    assert nbo.is_library(notebook)
    _, ok, _, err, fresh = nbo.execute(str(notebook))
    assert ok, err
    nbo.write(notebook, fresh)
    outs = _outputs(notebook)
    assert outs[1] == [{'name': 'stdout', 'output_type': 'stream', 'text': ['loss 0.1234\n']}]
    assert outs[2] == [{'name': 'stdout', 'output_type': 'stream', 'text': ['kept\n']}]     # stderr is not kept
    assert outs[3] == []                                                                     # nor a hidden cell's output
    assert [o['output_type'] for o in outs[5]] == ['display_data'] and 'image/png' in outs[5][0]['data']
    assert outs[6][0]['data']['text/plain'] == ['21']
    assert outs[7] == []                                                                     # nor a widget (it needs a live kernel)
    # Re-executing changes the object's address and the timing, nothing a reader learns from
    _, ok, _, _, again = nbo.execute(str(notebook))
    assert ok and nbo.differences(notebook, json.loads(notebook.read_text()), again) == []

def test_a_stale_output_is_named(notebook):
    _, _, _, _, fresh = nbo.execute(str(notebook))
    nbo.write(notebook, fresh)
    nb = json.loads(notebook.read_text())
    nb['cells'][1]['source'] = "print('loss 0.2000')"   # the code changed, the committed output did not
    notebook.write_text(json.dumps(nb))
    _, _, _, _, now = nbo.execute(str(notebook))
    diff = nbo.differences(notebook, nb, now)
    assert len(diff) == 1 and 'cell 1' in diff[0] and "print('loss 0.2000')" in diff[0]
    assert "committed 'loss 0.1234', now 'loss 0.2000'" in diff[0]

def test_a_failing_notebook_is_reported(tmp_path):
    fn = tmp_path/'nbs'/'02_broken.ipynb'
    fn.parent.mkdir()
    fn.write_text(json.dumps(_nb(["x = 1", "raise ValueError('broken on purpose')"])))
    _, ok, _, err, fresh = nbo.execute(str(fn))
    assert not ok and 'broken on purpose' in err and fresh is None

@pytest.mark.parametrize('a, b, same', [
    ('acc 0.1234', 'acc 0.1234', True),
    ('acc 0.10', 'acc 0.1', True),               # the same number
    ('acc 0.1234', 'acc 0.1235', False),         # every printed digit counts
    ('acc 0.7222', 'acc 0.7226', False),
    ('| ours | 0.9119 |', '| ours | 0.9127 |', False),
    ('n = 48', 'n = 49', False),                 # integers are exact
    ('n_query 1234', 'n_query 1235', False),
    ('12000 photos', '12011 photos', False),
    ('4000', '4001', False),
    ('L 1.5e-03', 'L 1.6e-03', False),           # exponent forms exactly
    ('at 0x7f1c2d3e4f50>', 'at 0x7f00aa11bb22>', True),
    ('took 1.25 s', 'took 3.5 s', True),
    ("{'n': 3, 'seconds': 0.108}", "{'n': 3, 'seconds': 0.25}", True),
    ('in /tmp/tmpab12cd/run', 'in /tmp/tmpzz99yy/run', True),
    ('mAP 0.5', 'mAP 0.5 (frozen)', False),
    ('sha256 `f1c8a3c9969e850e…`', 'sha256 `f1c8a3c9969e850e…`', True),  # '9969e850' reads as a number that overflows
    ('sha256 `f1c8a3c9969e850e…`', 'sha256 `f1c8a3c9969e851e…`', False)])
def test_same_text(a, b, same):
    assert nbo.same_text(a, b) is same

@pytest.mark.parametrize('a, b, same', [('acc 0.1234', 'acc 0.1235', True), ('acc 0.1234', 'acc 0.1236', False),
                                        ('n = 48', 'n = 49', False)])
def test_a_cell_listed_as_varying_gets_one_unit_of_its_last_digit(a, b, same):
    assert nbo.same_text(a, b, slack=1) is same

def _edit_first(nb:dict, old:str, new:str)->int:
    "Replace `old` by `new` in the first committed output holding it; the cell's index"
    for i, c in enumerate(nb['cells']):
        for o in c.get('outputs', []):
            for key, v in (('text', o.get('text')), *((m, d) for m, d in o.get('data', {}).items() if m != 'image/png')):
                lines = v if isinstance(v, list) else [v]
                if v is not None and any(old in l for l in lines):
                    new_lines = [l.replace(old, new, 1) for l in lines]
                    if key == 'text': o['text'] = new_lines
                    else: o['data'][key] = new_lines
                    return i
    raise AssertionError(f"{old!r} is not in the committed outputs")

@pytest.mark.slow
@pytest.mark.parametrize('nb, old, new', [('05_metrics.ipynb', '0.7222', '0.7226'), ('11_knn.ipynb', '4000', '4001')])
def test_a_committed_number_changed_by_a_few_units_is_caught(nb, old, new):
    "The committed outputs of a real library notebook, one number edited: the check names the cell"
    fn = ROOT/'nbs'/nb
    committed = json.loads(fn.read_text())
    _, ok, _, err, fresh = nbo.execute(str(fn))
    assert ok, err
    assert nbo.differences(fn, committed, fresh) == []
    i = _edit_first(committed, old, new)
    diff = nbo.differences(fn, committed, fresh)
    assert len(diff) == 1 and f'cell {i} ' in diff[0] and old in diff[0] and new in diff[0], diff
