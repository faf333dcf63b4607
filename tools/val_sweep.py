#!/usr/bin/env python
"""The embedded default's hyperparameter choices, made on the validation classes (seen classes held out from
training), never on the unseen test classes: B-FT's and B-Lin's learning rate, and the number of epochs of the
experiment notebooks' runs.

    python tools/val_sweep.py                     # zs, seed 0, under runs/experiments (shared with the notebooks' cache)
    python tools/val_sweep.py --out docs/figures  # also writes val_sweep.md there

Each entry is the main job (`clip_sbir.run.run_experiment`) with that method and rate, cached by its parameters
through `clip_sbir.experiments.run_grid`; the score is the key metric of the run's last validation (mAP@all on the
validation classes). Only validation scores are printed: the test classes play no part in the choice.
"""
import argparse, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATES = {'ft': (1e-5, 3e-5, 1e-4, 3e-4, 1e-3), 'lin': (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)}
EPOCHS = (1, 2, 3)

def main():
    from clip_sbir.experiments import Variant, run_grid, run_params
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--mode', default='zs')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--root', default='runs/experiments', help="folder of the runs (relative to the repository)")
    ap.add_argument('--out', default='', help="folder to write val_sweep.md into")
    a = ap.parse_args()
    base = run_params(a.mode)
    lr = [Variant('lr', m, {'method': m, 'lr_other': r, 'epochs': 1}, r) for m, rs in RATES.items() for r in rs]
    ep = [Variant('epochs', 'ours', {'epochs': e}, e) for e in EPOCHS]
    df = run_grid(lr + ep, base, [a.seed], ROOT/a.root)
    key = df.key.iloc[0]
    lines = [f"Validation classes ({a.mode}, seed {a.seed}), {key} of the last validation; **bold**: the choice.", "",
             "| `lr_other` (1 epoch) | " + " | ".join(f"{r:g}" for r in sorted({r for rs in RATES.values() for r in rs})) + " |",
             "|:--|" + "--:|" * len({r for rs in RATES.values() for r in rs})]
    rates = sorted({r for rs in RATES.values() for r in rs})
    for m in RATES:
        d = df[(df.sweep == 'lr') & (df.method == m)].set_index('x').val
        best = d.idxmax()
        lines.append(f"| {m} | " + " | ".join('' if r not in d.index else (f"**{d[r]:.3f}**" if r == best else f"{d[r]:.3f}") for r in rates) + " |")
    d = df[df.sweep == 'epochs'].set_index('x').val
    lines += ["", "| epochs (ours) | " + " | ".join(str(int(e)) for e in d.index) + " |", "|:--|" + "--:|" * len(d),
              "| " + key + " | " + " | ".join(f"{v:.3f}" for v in d) + " |", "",
              f"frozen CLIP on the validation classes: {df.val_baseline.iloc[0]:.3f}", "",
              f"command: python tools/val_sweep.py --mode {a.mode} --seed {a.seed}"]
    md = "\n".join(lines)
    print(md)
    if a.out: (ROOT/a.out).mkdir(parents=True, exist_ok=True); (ROOT/a.out/'val_sweep.md').write_text(md + '\n')
    return 0

if __name__ == '__main__': sys.exit(main())
