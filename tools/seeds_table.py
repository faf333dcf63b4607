#!/usr/bin/env python
"""Seeds table for README: the main job on the embedded default, 3 seeds x 2 modes, trained vs frozen CLIP.

    python tools/seeds_table.py                 # 3 seeds x 2 modes under runs/seeds (about 4 minutes), prints the table
                                                # and writes it to docs/figures/seeds.md (README shows that file)
    python tools/seeds_table.py --seeds 0 1 2 --modes zs fg -p epochs 4
    python tools/seeds_table.py --rerun         # retrain even the runs already in runs/seeds

Each run is `clip_sbir.run.run_experiment` (the steps of nbs/train.ipynb), cached by its parameters
through `clip_sbir.experiments.run_grid` under runs/seeds/<run name>/ (a finished run with the same
parameters is read, not rerun: rerun with --rerun after changing the code, the world or the weights).
The claim checked: on the unseen categories, mean(trained) - baseline > 3 x std(trained over seeds)
(zs: mAP@all, fg: acc@1), std = sample standard deviation over the seeds. The frozen baseline has no
trainable state, so it does not vary with the seed.
"""
import argparse, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def main():
    from clip_sbir.experiments import Variant, run_grid, run_params
    from clip_sbir.params import parse_value
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--modes', nargs='+', default=['zs', 'fg'])
    ap.add_argument('--out', default='runs/seeds', help="folder of the runs (relative to the repository)")
    ap.add_argument('-p', nargs=2, action='append', default=[], metavar=('NAME', 'VALUE'), help="extra parameter for every run")
    ap.add_argument('--rerun', action='store_true', help="retrain runs that are already in --out")
    ap.add_argument('--md', default='docs/figures/seeds.md', help="also write the table here (relative to the repository; '' = don't)")
    a = ap.parse_args()
    extra = {k: parse_value(v) for k, v in a.p}
    rows, ok = [], True
    for mode in a.modes:
        df = run_grid([Variant('seeds', 'ours')], run_params(mode, overrides=extra), a.seeds, ROOT/a.out, reuse=not a.rerun)
        for r in df.itertuples():
            print(f"{mode} seed {r.seed}: {r.key} {r.value:.4f} (frozen {r.baseline:.4f}); train {r.train_seconds:.0f} s"
                  + (" (cached)" if r.cached else ""), file=sys.stderr)
        tr, base, k = df.value.to_numpy(), df.baseline.to_numpy(), df.key.iloc[0]
        gain, sd = tr.mean() - base.mean(), tr.std(ddof=1) if len(tr) > 1 else float('nan')
        passed = bool(gain > 3 * sd); ok &= passed
        rows.append(f"| {mode} | {k} | {base.mean():.4f} | " + " | ".join(f"{v:.4f}" for v in tr) +
                    f" | {tr.mean():.4f} ± {sd:.4f} | {gain:+.4f} | {gain / sd:.1f} | {'yes' if passed else 'no'} |")
    seeds = " | ".join(f"seed {s}" for s in a.seeds)
    table = "\n".join([f"| mode | metric (unseen) | frozen CLIP | {seeds} | trained mean ± std | gain | gain / std | gain > 3 std |",
                       "|:--|:--|--:|" + "--:|" * len(a.seeds) + "--:|--:|--:|:-:|", *rows,
                       f"\ncommand: `python tools/seeds_table.py --seeds {' '.join(map(str, a.seeds))} --modes {' '.join(a.modes)}" +
                       "".join(f" -p {k} {v}" for k, v in a.p) + "`"])
    print(table)
    if a.md: (ROOT/a.md).write_text(table + "\n", encoding='utf-8'); print(f"wrote {a.md}", file=sys.stderr)
    return 0 if ok else 1

if __name__ == '__main__': sys.exit(main())
