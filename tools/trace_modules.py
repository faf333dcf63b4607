#!/usr/bin/env python
"""Follow one config through the main job (`clip_sbir.run.run_experiment`) and count how often it enters each module.

    python tools/trace_modules.py                    # a 2-step zs run on the embedded default
    python tools/trace_modules.py --mode fg --steps 2

An entry is a call from one clip_sbir module into another (sys.setprofile). A call climbs back up when the callee's
module imports, directly or not, the caller's module (so the callee sits above it). Callbacks a caller hands down
(a loss function, a progress hook) count as such too, and are listed by name so a reader can judge them.
"""
import argparse, ast, collections, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def import_graph(pkg:Path=ROOT/'clip_sbir')->dict:
    "module -> the clip_sbir modules it imports (relative or absolute), from the source"
    out = {}
    for p in pkg.rglob('*.py'):
        if p.name == '_modidx.py': continue
        mod = '.'.join(p.relative_to(pkg.parent).with_suffix('').parts).removesuffix('.__init__')
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split('.')[:len(mod.split('.')) - node.level]
                    name = '.'.join(base + ([node.module] if node.module else []))
                else: name = node.module or ''
                if name.startswith('clip_sbir'): deps.add(name)
        out[mod] = deps
    return out

def above(graph:dict)->dict:
    "module -> every module it imports transitively"
    memo = {}
    def reach(m, seen=()):
        if m in memo: return memo[m]
        r = set()
        for d in graph.get(m, ()):
            if d in seen: continue
            r |= {d} | reach(d, seen + (m,))
        memo[m] = r
        return r
    return {m: reach(m) for m in graph}

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--mode', default='zs')
    ap.add_argument('--steps', type=int, default=2)
    ap.add_argument('--module', default='clip_sbir.core', help="list the functions entered in this module")
    a = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    from clip_sbir.core import SBIRConfig
    from clip_sbir.run import run_experiment
    reach = above(import_graph())
    entries, up, funcs = collections.Counter(), collections.Counter(), collections.Counter()
    def prof(frame, event, arg):
        if event != 'call': return
        callee = frame.f_globals.get('__name__', '')
        caller = frame.f_back.f_globals.get('__name__', '') if frame.f_back else ''
        if not callee.startswith('clip_sbir') or not caller.startswith('clip_sbir') or callee == caller: return
        entries[callee] += 1
        if callee == a.module: funcs[frame.f_code.co_name] += 1
        if caller in reach.get(callee, ()): up[f"{caller} -> {callee}.{frame.f_code.co_name}"] += 1
    with tempfile.TemporaryDirectory() as d:
        cfg = SBIRConfig(mode=a.mode, max_steps=a.steps, out_dir=d, val_queries=20, eval_every=0)
        sys.setprofile(prof)
        try: run_experiment(cfg)
        finally: sys.setprofile(None)
    print(f"entries into each module ({a.mode}, {a.steps} steps):")
    for m, n in entries.most_common(): print(f"  {n:6d}  {m}")
    print(f"functions entered in {a.module}: " + ", ".join(f"{f} x{n}" for f, n in funcs.most_common()))
    print("calls that climb back up (callee imports the caller):" if up else "no call climbs back up")
    for e, n in up.most_common(): print(f"  {n:6d}  {e}")
    return 0

if __name__ == '__main__': sys.exit(main())
