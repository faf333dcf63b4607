#!/usr/bin/env python
"""What each test costs, as a committed table: read from the output of the full check, written to tests/DURATIONS.md.

    bash tools/test.sh 2>&1 | tee /tmp/test.log && python tools/test_durations.py /tmp/test.log

`bash tools/test.sh` prints every test phase of at least a second (pytest's `--durations`) and each step's time; this
turns them into one table per file and one per test, marking the tests the quick loop (`--quick`) leaves out, so the
next change can see what it adds.
"""
from __future__ import annotations
import argparse, re, sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_DUR = re.compile(r'^(\d+\.\d+)s (setup|call|teardown)\s+(tests/\S+?\.py)::(\S.*)$')
_GROUP = re.compile(r'@[^@\]]*$')
_STEP = re.compile(r'^   (\d+/\d+ .*): (\d+) s$')

def slow_tests()->set:
    "Node ids of the tests marked slow (left out of the quick loop), as pytest collects them"
    import subprocess
    out = subprocess.run([sys.executable, '-m', 'pytest', 'tests', '-q', '--collect-only', '-m', 'slow', '-p', 'no:cacheprovider'],
                         cwd=ROOT, capture_output=True, text=True).stdout
    return {l.strip() for l in out.splitlines() if '::' in l}

def read_log(text:str)->tuple[dict, list]:
    "(test node id -> seconds, summed over setup, call and teardown), [(step, seconds)] from a `bash tools/test.sh` log"
    tests, steps = defaultdict(float), []
    for line in text.splitlines():
        if m := _DUR.match(line):
            name = _GROUP.sub('', m.group(4).strip())                                      # without xdist's @group suffix
            tests[f"{m.group(3)}::{name}"] += float(m.group(1))
        elif m := _STEP.match(line): steps.append((m.group(1), int(m.group(2))))
    if not tests: raise SystemExit("no pytest durations in the log: pass the output of `bash tools/test.sh`")
    return dict(tests), steps

def table(tests:dict, steps:list, slow:set)->str:
    by_file = defaultdict(lambda: [0., 0, 0.])
    for t, s in tests.items():
        f = by_file[t.split('::')[0]]
        f[0] += s; f[1] += 1
        if t not in slow: f[2] += s
    total = sum(tests.values())
    lines = ["# What the tests cost", "",
             "Written by `python tools/test_durations.py LOG` from the output of `bash tools/test.sh` on a 2-core CPU (one",
             "thread per worker, two workers). Seconds are each test's own time (setup, call and teardown, where at least",
             "one second); the workers run two at a time, so the wall time is about half their sum. *quick*: what",
             "`bash tools/test.sh --quick` keeps (the tests not marked `slow`, plus the notebooks changed in the working tree).", "",
             "| step | seconds (wall) |", "|:--|--:|"] + [f"| {n} | {s} |" for n, s in steps] + ["",
             f"Tests of at least a second: {len(tests)}, {total:.0f} s in all, {sum(s for t, s in tests.items() if t not in slow):.0f} s of them in the quick loop.", "",
             "| file | tests (>= 1 s) | seconds | of them quick |", "|:--|--:|--:|--:|"]
    lines += [f"| `{f}` | {n} | {s:.0f} | {q:.0f} |" for f, (s, n, q) in sorted(by_file.items(), key=lambda kv: -kv[1][0])]
    lines += ["", "| test | seconds | quick |", "|:--|--:|:-:|"]
    lines += [f"| `{t}` | {s:.1f} | {'' if t in slow else 'yes'} |" for t, s in sorted(tests.items(), key=lambda kv: -kv[1])]
    return '\n'.join(lines) + '\n'

def main(argv=None)->int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('log', help="output of `bash tools/test.sh`")
    ap.add_argument('--out', default=str(ROOT/'tests'/'DURATIONS.md'))
    a = ap.parse_args(argv)
    tests, steps = read_log(Path(a.log).read_text())
    Path(a.out).write_text(table(tests, steps, slow_tests()))
    print('wrote', a.out)
    return 0

if __name__ == '__main__': sys.exit(main())
