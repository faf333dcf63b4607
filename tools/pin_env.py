#!/usr/bin/env python
"""Pins where they belong: the library declares compatible ranges (settings.ini), the check runs on exact versions.

    python tools/pin_env.py              # write constraints/dev.txt: this environment's exact versions (run it after
                                         #   `pip install -e ".[dev]"` resolved afresh and `bash tools/test.sh` passed)
    python tools/pin_env.py --lowest     # write constraints/lowest.txt: every runtime requirement at its lower bound

README's contributor install and CI install with `-c constraints/dev.txt`, so the committed notebook outputs, CI and a
contributor share one resolution; a new release of torch, numpy or matplotlib reaches the check only when this tool
records it. `pip install .` (a user's install) reads only settings.ini's ranges and leaves a torch in those ranges in
place. `constraints/lowest.txt` installs the lowest versions the ranges allow, to show they still pass:

    python -m venv /tmp/low && . /tmp/low/bin/activate
    pip install -e ".[dev]" -c constraints/lowest.txt && python tools/pin_env.py --verify-lowest
    CLIP_SBIR_OUTPUTS=run bash tools/test.sh --quick      # outputs are compared only on the pinned versions
"""
from __future__ import annotations
import argparse, platform, re, subprocess, sys
from configparser import ConfigParser
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT/'constraints'
_REQ = re.compile(r'^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?(.*)$')

def settings()->dict:
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini', encoding='utf-8')
    return cfg['DEFAULT']

def requirements(kind:str='requirements')->list[tuple[str, str]]:
    "(name, version specifier) of each requirement of settings.ini's `kind` line"
    out = []
    for r in settings().get(kind, '').split():
        m = _REQ.match(r)
        if not m: raise ValueError(f"settings.ini {kind}: cannot read {r!r}")
        out.append((m.group(1), m.group(3)))
    return out

def lower_bound(name:str, spec:str)->str:
    "The lowest version `spec` allows: its `>=` or `==` bound; a requirement without one is an error"
    m = re.search(r'(?:>=|==)\s*([0-9][^,;\s]*)', spec)
    if not m: raise ValueError(f"settings.ini: {name}{spec} has no lower bound (>= or ==): say which versions were tested")
    return m.group(1)

def canonical(name:str)->str: return re.sub(r'[-_.]+', '-', name).lower()

def header(what:str)->str:
    return (f"# {what}\n# written by `python tools/pin_env.py{'' if 'exact' in what else ' --lowest'}` "
            f"(Python {platform.python_version()}, {sys.platform} {platform.machine()}); do not edit by hand\n")

def write_dev()->Path:
    "constraints/dev.txt: every distribution of this environment at its installed version, the package itself left out"
    frozen = subprocess.run([sys.executable, '-m', 'pip', 'freeze', '--exclude-editable'], capture_output=True, text=True, check=True).stdout
    lines = sorted((l for l in frozen.splitlines() if '==' in l and canonical(l.split('==')[0]) != 'clip-sbir'), key=str.lower)
    missing = [n for k in ('requirements', 'dev_requirements', 'browser_requirements', 'search_requirements') for n, _ in requirements(k)
               if canonical(n) not in {canonical(l.split('==')[0]) for l in lines}]
    if missing: raise SystemExit(f"not installed here: {', '.join(missing)}: run pip install -e \".[dev]\" first")
    OUT.mkdir(exist_ok=True)
    path = OUT/'dev.txt'
    path.write_text(header("The check's environment, exact: README's contributor install and CI use it (pip install -e \".[dev]\" -c constraints/dev.txt)")
                    + '\n'.join(lines) + '\n')
    return path

def write_lowest()->Path:
    "constraints/lowest.txt: each runtime requirement at the lowest version its range allows"
    OUT.mkdir(exist_ok=True)
    path = OUT/'lowest.txt'
    path.write_text(header("The lowest versions settings.ini's runtime ranges allow (pip install -e \".[dev]\" -c constraints/lowest.txt)")
                    + '\n'.join(f"{n}=={lower_bound(n, s)}" for n, s in requirements()) + '\n')
    return path

def verify_lowest()->int:
    "Exit 1 unless every runtime requirement is installed at its lower bound"
    from packaging.version import Version
    bad = []
    for n, s in requirements():
        want = lower_bound(n, s)
        try: have = metadata.version(n)
        except metadata.PackageNotFoundError: have = None
        if have is None or Version(have.split('+')[0]) != Version(want): bad.append(f"{n}: {have} installed, lower bound {want}")
    for b in bad: print('not at the lower bound:', b)
    if not bad: print(f"all {len(requirements())} runtime requirements at their lower bounds")
    return 1 if bad else 0

def main(argv=None)->int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument('--lowest', action='store_true', help="write constraints/lowest.txt instead")
    g.add_argument('--verify-lowest', action='store_true', help="check that this environment holds the lowest versions")
    a = ap.parse_args(argv)
    if a.verify_lowest: return verify_lowest()
    print('wrote', (write_lowest() if a.lowest else write_dev()).relative_to(ROOT))
    return 0

if __name__ == '__main__': sys.exit(main())
