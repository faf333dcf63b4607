#!/usr/bin/env bash
# The project's test command (README: "Test"), in two sizes:
#   bash tools/test.sh           the full check, what CI and README run: notebooks clean, package in sync, README current,
#                                then pytest, which runs every notebook's own tests with the library notebooks' committed
#                                outputs compared with fresh ones (tests/test_notebooks.py, tools/nb_outputs.py) beside
#                                the other tests, and ends the run with its count line
#   bash tools/test.sh --quick   the inner loop after an edit (at most 2 minutes on a 2-core CPU): the same first four
#                                steps, then the tests not marked `slow` (every module of the package is exercised) and
#                                every notebook changed in the working tree (tests/DURATIONS.md: what each test costs,
#                                which loop runs it; python tools/test_durations.py rewrites it from this command's output)
# Both run on all cores with one thread per process, and print each step's time. They use a cache folder of their own,
# made fresh for the run (the user's ~/.cache/clip_sbir is never read or written); only the generated synthetic worlds,
# keyed by the generator's fingerprint, are kept between runs, in .cache/synthetic.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  "") ;;
  *) echo "usage: bash tools/test.sh [--quick]" >&2; exit 2 ;;
esac
export MPLBACKEND=Agg PYTHONHASHSEED=0 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export CLIP_SBIR_TEST_CACHE; CLIP_SBIR_TEST_CACHE=$(mktemp -d -t clip_sbir_tests.XXXXXX)
export CLIP_SBIR_CACHE=$CLIP_SBIR_TEST_CACHE
trap 'rm -rf "$CLIP_SBIR_TEST_CACHE"' EXIT
mkdir -p .cache/synthetic && ln -s "$PWD/.cache/synthetic" "$CLIP_SBIR_TEST_CACHE/synthetic"
workers=$(python -c "import os; print(max(1, min(len(os.sched_getaffinity(0)), 8)))")
start=$SECONDS
step() {   # step N/M "what" command...: run it, print its time
  local t=$SECONDS name=$1; shift
  echo "== $name"
  "$@"
  echo "   $name: $(( SECONDS - t )) s"
}
dirty() { git status --porcelain --untracked-files=no -- nbs clip_sbir README.md; }
clean_check() {
  local before; before=$(dirty)
  nbdev_clean
  if [ "$(dirty)" != "$before" ]; then git status --porcelain -- nbs; echo "FAIL: notebooks are not clean: run nbdev_clean and commit"; return 1; fi
}
export_check() {
  local before; before=$(dirty)
  nbdev_export
  if [ "$(dirty)" != "$before" ]; then git status --porcelain -- clip_sbir; echo "FAIL: clip_sbir/ is out of sync with nbs/: run nbdev_export and commit"; return 1; fi
}
worlds() { python -c "from clip_sbir.data.synthetic import load_synthetic; load_synthetic()"; }
n=5
step "1/$n notebooks clean (nbdev_clean changes nothing)" clean_check
step "2/$n package in sync (nbdev_export changes nothing)" export_check
step "3/$n README current (generated from nbs/index.ipynb)" python tools/make_readme.py --check
step "4/$n the embedded world, generated once for every later test (kept in .cache/synthetic)" worlds
# pytest runs every notebook too (tests/test_notebooks.py), in the same pool of workers as the other tests
if [ $quick = 1 ]; then
  step "5/$n pytest, quick: the tests not marked slow, $workers workers" \
    python -m pytest tests -q -p no:cacheprovider -m "not slow" -n "$workers" --dist loadgroup
else
  step "5/$n pytest: every notebook's tests and outputs, then the rest, $workers workers" \
    python -m pytest tests -q -p no:cacheprovider -n "$workers" --dist loadgroup --durations=0 --durations-min=1
fi
echo "== all steps: $(( SECONDS - start )) s"
