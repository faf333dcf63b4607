#!/usr/bin/env bash
# What the real-browser test (tests/test_browser.py) needs, installed idempotently:
#   apt (Debian):  chromium            -> /usr/bin/chromium, the headless browser
#                  fonts-dejavu-core   -> a font, so text in the screenshot renders
#   pip (active python): playwright==1.65.2  -> the Python driver; it drives /usr/bin/chromium through
#                  executable_path. `playwright install` is never run (it would download its own browser).
# playwright and jupyterlab are the [browser] extra (part of [dev]); ipycanvas/ipywidgets are runtime requirements (settings.ini).
# Needs root (or sudo) for apt-get; the package index is refreshed once, only when something is missing. Without root,
# a user install does not need this at all (README: Install), and tests/test_browser.py skips, saying what is missing
# (or set CLIP_SBIR_CHROMIUM to a Chromium binary).
set -euo pipefail
PY=${PYTHON:-python}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "+ apt-get install ${need_apt[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi
if ! "$PY" -c "import playwright.sync_api" 2>/dev/null; then
  echo "+ $PY -m pip install playwright==1.65.2"
  "$PY" -m pip install -q "playwright==1.65.2"
fi
/usr/bin/chromium --version
"$PY" -c "import importlib.metadata as m; print('playwright', m.version('playwright'))"
