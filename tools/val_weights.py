#!/usr/bin/env python
"""Tiny CLIP weights compared on the validation classes only (seen classes held out from training): the main job's
gain over frozen CLIP for the full method, prompts without LayerNorm tuning, and LayerNorm tuning alone (K = 0).

    python tools/val_weights.py --weights shipped=embedded clean=runs/pretrain/clean/weights.safetensors
    python tools/val_weights.py --weights clean=runs/pretrain/clean/weights.safetensors --seeds 0 1 2 --epochs 3

Each entry is the main job (`clip_sbir.run.run_experiment`), cached by its parameters through
`clip_sbir.experiments.run_grid` under --root/<name>; the score is the key metric of the run's last validation
(zs mAP@all, fg acc@1 on the validation classes). Only validation scores are printed: a choice of weights made here
never looks at the unseen test classes.
"""
import argparse, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {'zs': [('ours', {}), ('prompts only', {'tune_ln': False}), ('K=0', {'n_prompts': 0})], 'fg': [('ours', {})]}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--weights', nargs='+', required=True, metavar='NAME=WEIGHTS', help="'embedded' or a weights file of clip-sbir-tiny, each named")
    ap.add_argument('--seeds', type=int, nargs='+', default=[0])
    ap.add_argument('--epochs', type=int, default=1)
    ap.add_argument('--modes', nargs='+', default=['zs', 'fg'], choices=sorted(VARIANTS))
    ap.add_argument('--root', default='runs/val_weights', help="folder of the runs (relative to the repository)")
    ap.add_argument('--md', default='', help="also write the table, with this command, to this file (relative to the repository)")
    a = ap.parse_args(argv)
    weights = dict(w.partition('=')[::2] for w in a.weights)
    bad = [f"{k}={v}" for k, v in weights.items() if not k or not (v == 'embedded' or Path(v).is_file())]
    if bad: ap.error(f"--weights {' '.join(bad)}: expected NAME=embedded or NAME=<an existing weights file>")
    from clip_sbir.core import write_atomic
    from clip_sbir.experiments import Variant, run_grid, run_params
    rows = []
    for mode in a.modes:
        for name, path in weights.items():
            vs = [Variant(v, 'ours', {'pretrained': path, 'epochs': a.epochs, **p}, v) for v, p in VARIANTS[mode]]
            df = run_grid(vs, run_params(mode), a.seeds, ROOT/a.root/name)
            for v, d in df.groupby('sweep', sort=False):
                gain = d.val - d.val_baseline
                sd = f" ± {gain.std(ddof=1):.4f}" if len(d) > 1 else ''
                rows.append(f"| {mode} | {name} | {v} | {d.val_baseline.mean():.4f} | {d.val.mean():.4f} | {gain.mean():+.4f}{sd} |")
    md = (f"Validation classes, seeds {' '.join(map(str, a.seeds))}, {a.epochs} epoch(s); zs: mAP@all, fg: acc@1\n\n"
          "| mode | weights | variant | frozen | trained | gain |\n|:--|:--|:--|--:|--:|--:|\n" + "\n".join(rows)
          + "\n\ncommand: `python tools/val_weights.py " + ' '.join(sys.argv[1:] if argv is None else argv) + "`\n")
    print(md)
    if a.md: write_atomic(ROOT/a.md, lambda f: f.write(md.encode()))
    return 0

if __name__ == '__main__': sys.exit(main())
