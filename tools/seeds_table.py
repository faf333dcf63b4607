#!/usr/bin/env python
"""Seeds table for README: the main job on the embedded default, 3 seeds x 2 modes, trained vs frozen CLIP.

    python tools/seeds_table.py                 # 3 seeds x 2 modes under runs/seeds (about 4 minutes), prints the table
    python tools/seeds_table.py --seeds 0 1 2 --modes zs fg -p epochs 4
    python tools/seeds_table.py --reuse         # only print, reusing runs whose metrics.json has the same config

Each run is `python -m clip_sbir.run` (the steps of nbs/train.ipynb) in its own process, writing
runs/seeds/<mode>_seed<k>/metrics.json. With --reuse, a run whose metrics.json holds the same config
is not rerun (the config does not record the world's or the weights' version: rerun after they change).
The claim checked: on the unseen categories, mean(trained) - baseline > 3 x std(trained over seeds)
(zs: mAP@all, fg: acc@1), std = sample standard deviation over the seeds. The frozen baseline has no
trainable state, so it does not vary with the seed.
"""
import argparse, json, subprocess, sys, time
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
KEY = {'zs': 'mAP@all', 'fg': 'acc@1'}

def run(mode, seed, out, extra, reuse):
    from clip_sbir.run import parse_args
    argv = ['-p', 'mode', mode, '-p', 'seed', str(seed), '-p', 'out_dir', str(out)] + sum((['-p', k, v] for k, v in extra), [])
    cfg = parse_args(argv).to_dict()
    m = out/'metrics.json'
    if reuse and m.exists() and json.loads(m.read_text())['config'] == cfg: return json.loads(m.read_text()), 0.0
    t = time.perf_counter()
    subprocess.run([sys.executable, '-m', 'clip_sbir.run', *argv], cwd=ROOT, check=True)
    return json.loads(m.read_text()), time.perf_counter() - t

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--modes', nargs='+', default=['zs', 'fg'])
    ap.add_argument('--out', default='runs/seeds', help="folder of the runs (relative to the repository)")
    ap.add_argument('-p', nargs=2, action='append', default=[], metavar=('NAME', 'VALUE'), help="extra parameter for every run")
    ap.add_argument('--reuse', action='store_true', help="reuse runs whose metrics.json has the same config")
    a = ap.parse_args()
    rows, ok = [], True
    for mode in a.modes:
        recs = []
        for s in a.seeds:
            rec, secs = run(mode, s, ROOT/a.out/f'{mode}_seed{s}', a.p, a.reuse)
            recs.append(rec)
            print(f"{mode} seed {s}: {KEY[mode]} {rec['metrics'][KEY[mode]]:.4f} (frozen {rec['baseline'][KEY[mode]]:.4f}); "
                  f"train {rec['train_seconds']:.0f} s" + (f", run {secs:.0f} s" if secs else " (cached)"), file=sys.stderr)
        k = KEY[mode]
        tr = np.array([r['metrics'][k] for r in recs]); base = np.array([r['baseline'][k] for r in recs])
        gain, sd = tr.mean() - base.mean(), tr.std(ddof=1) if len(tr) > 1 else float('nan')
        passed = bool(gain > 3 * sd); ok &= passed
        rows.append(f"| {mode} | {k} | {base.mean():.4f} | " + " | ".join(f"{v:.4f}" for v in tr) +
                    f" | {tr.mean():.4f} ± {sd:.4f} | {gain:+.4f} | {gain / sd:.1f} | {'yes' if passed else 'no'} |")
    seeds = " | ".join(f"seed {s}" for s in a.seeds)
    print(f"| mode | metric (unseen) | frozen CLIP | {seeds} | trained mean ± std | gain | gain / std | gain > 3 std |")
    print("|:--|:--|--:|" + "--:|" * len(a.seeds) + "--:|--:|--:|:-:|")
    print("\n".join(rows))
    print(f"\ncommand: python tools/seeds_table.py --seeds {' '.join(map(str, a.seeds))} --modes {' '.join(a.modes)}" +
          "".join(f" -p {k} {v}" for k, v in a.p))
    return 0 if ok else 1

if __name__ == '__main__': sys.exit(main())
