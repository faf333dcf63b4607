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
    ('acc 0.1234', 'acc 0.1235', True),          # the last printed digit may round either way
    ('acc 0.1234', 'acc 0.1240', False),
    ('n = 48', 'n = 49', False),                 # integers are exact
    ('at 0x7f1c2d3e4f50>', 'at 0x7f00aa11bb22>', True),
    ('took 1.25 s', 'took 3.5 s', True),
    ("{'n': 3, 'seconds': 0.108}", "{'n': 3, 'seconds': 0.25}", True),
    ('in /tmp/tmpab12cd/run', 'in /tmp/tmpzz99yy/run', True),
    ('mAP 0.5', 'mAP 0.5 (frozen)', False),
    ('sha256 `f1c8a3c9969e850e…`', 'sha256 `f1c8a3c9969e850e…`', True),  # '9969e850' reads as a number that overflows
    ('sha256 `f1c8a3c9969e850e…`', 'sha256 `f1c8a3c9969e851e…`', False)])
def test_same_text(a, b, same):
    assert nbo.same_text(a, b) is same
