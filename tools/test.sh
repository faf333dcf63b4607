#!/usr/bin/env bash
# The project's one test command (README: "Test"). Mirrors nbdev-ci: notebooks clean, package in
# sync, notebooks' own tests (executed as nbdev_test does, and the library notebooks' committed
# outputs compared with fresh ones: tools/nb_outputs.py), then pytest, which ends the run with its count line.
set -euo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg PYTHONHASHSEED=0
dirty() { git status --porcelain --untracked-files=no -- nbs clip_sbir README.md; }
before=$(dirty)
echo "== 1/5 notebooks clean (nbdev_clean changes nothing)"
nbdev_clean
if [ "$(dirty)" != "$before" ]; then git status --porcelain -- nbs; echo "FAIL: notebooks are not clean: run nbdev_clean and commit"; exit 1; fi
echo "== 2/5 package in sync (nbdev_export changes nothing)"
nbdev_export
if [ "$(dirty)" != "$before" ]; then git status --porcelain -- clip_sbir; echo "FAIL: clip_sbir/ is out of sync with nbs/: run nbdev_export and commit"; exit 1; fi
echo "== 3/5 README current (generated from nbs/index.ipynb)"
python tools/make_readme.py --check
echo "== 4/5 the notebooks' own tests, and the library notebooks' outputs current and under the size cap"
python tools/nb_outputs.py --check
echo "== 5/5 pytest"
python -m pytest tests -q -p no:cacheprovider
