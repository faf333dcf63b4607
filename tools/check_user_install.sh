#!/usr/bin/env bash
# A user's install, proved end to end without root: a fresh plain virtual environment (no system
# site-packages), `pip install <this repository>` (a regular, non-editable install: no dev tools, no
# browser), then, from another folder, the main job, and the notebooks and parameter files the
# package ships.
#   bash tools/check_user_install.sh [VENV] [OUT_DIR]   # defaults /tmp/v_user /tmp/u1
# The first run downloads torch and its CUDA libraries (GBs); pip's cache makes reruns quick.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${1:-/tmp/v_user}; OUT=${2:-/tmp/u1}
unset PYTHONPATH                                   # only what pip installed may be imported
rm -rf "$VENV" "$OUT"
echo "+ python3 -m venv $VENV"; python3 -m venv "$VENV"
. "$VENV/bin/activate"
echo "+ pip install $ROOT"; start=$SECONDS
python -m pip install -q "$ROOT"
echo "  installed in $((SECONDS - start)) s"
cd "$(mktemp -d)"                                  # not the repository: nothing is found by accident
python - <<'PY'
import importlib.util as u, clip_sbir, sys
from pathlib import Path
from clip_sbir.core import notebooks_path, configs_path
pkg = Path(clip_sbir.__file__).parent
assert Path(sys.prefix) in pkg.parents, f"clip_sbir imported from {pkg}, not from the virtual environment {sys.prefix}"
print('clip_sbir', clip_sbir.__version__, 'from', pkg)
print('training notebook:', notebooks_path('train.ipynb'))
assert notebooks_path('train.ipynb').is_file() and notebooks_path('experiments', 'widgets.ipynb').is_file()
assert configs_path('sketchy_zs.yaml').is_file()
extra = [m for m in ('playwright', 'nbdev', 'accelerate', 'faiss') if u.find_spec(m)]
assert not extra, f"a user install pulled in {extra}: they belong to extras"
print('not installed (extras):', 'playwright nbdev accelerate faiss')
PY
echo "+ papermill --help-notebook <shipped train.ipynb>"
papermill --help-notebook "$(python -c "from clip_sbir.core import notebooks_path; print(notebooks_path('train.ipynb'))")" | grep -E "^  (mode|epochs|out_dir): " || { echo "FAIL: the shipped notebook lists no parameters"; exit 1; }
echo "+ python -m clip_sbir.run -p mode zs -p epochs 1 -p out_dir $OUT"; start=$SECONDS
python -m clip_sbir.run -p mode zs -p epochs 1 -p out_dir "$OUT"
echo "  main job took $((SECONDS - start)) s"
python - "$OUT" <<'PY'
import json, math, sys
m = json.load(open(f'{sys.argv[1]}/metrics.json'))
got = m['metrics']                                  # the unseen classes' retrieval metrics of the trained prompts
assert got and all(math.isfinite(v) and 0 <= v <= 1 for v in got.values()), got
print(f"metrics.json ({m['n_query']} unseen sketches x {m['n_gallery']} photos, trained {m['train_seconds']:.0f} s):")
print('  trained ', ', '.join(f'{k} {v:.4f}' for k, v in got.items()))
print('  frozen  ', ', '.join(f'{k} {v:.4f}' for k, v in m['baseline'].items()))
PY
echo "user install OK: no root, library + main job + notebooks"
