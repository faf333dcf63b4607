"""Every notebook `nbdev_test` runs, one test each: executed as `nbdev_test` runs it, in a process of its own
forked from a server that imported torch and open_clip once (`tools/nb_outputs.py`), its own tests pass, and a library notebook's committed outputs are what it prints now, under
the size cap. As pytest tests they share the suite's workers with every other test (`bash tools/test.sh`), so two
pools never wait on each other's slowest member; `python tools/nb_outputs.py --check` runs the same checks alone.

The quick loop (`bash tools/test.sh --quick`, tests not marked `slow`) runs the notebooks of the modules no other
quick test exercises, and every notebook changed in the working tree (what you just edited)."""
import os, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import nb_outputs

QUICK = {'06a_report.ipynb', '07_viz.ipynb', '09_widgets.ipynb'}   # clip_sbir.report, viz, widgets and retrieval: no other quick test runs them

def _notebooks()->list:
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        return nb_outputs.notebooks([])
    finally: os.chdir(cwd)

def _changed()->set:
    "Notebooks that differ from the last commit (edited, staged or new): the quick loop runs them too"
    r = subprocess.run(['git', 'status', '--porcelain', '--', 'nbs'], cwd=ROOT, capture_output=True, text=True)
    return {Path(l[3:].split(' -> ')[-1]).name for l in r.stdout.splitlines()} if r.returncode == 0 else set()

_QUICK = QUICK | _changed()

@pytest.mark.parametrize('nb', [pytest.param(p, id=p.name, marks=[] if p.name in _QUICK else [pytest.mark.slow]) for p in _notebooks()])
def test_notebook(nb, capsys):
    "Its cells run without error; a library notebook's outputs are current"
    mode = '--run' if os.environ.get('CLIP_SBIR_OUTPUTS') == 'run' else '--check'   # run: versions other than constraints/dev.txt's
    code = nb_outputs.main([mode, '--workers', '1', str(nb)])
    out = capsys.readouterr().out
    assert code == 0, out[-6000:]
