#!/usr/bin/env python
"""Choices the paper leaves open, made on the validation classes (seen classes held out from training), never on the
unseen test classes: B-FT's and B-Lin's learning rate, and (on the embedded default) the number of epochs of the
experiment notebooks' runs.

    python tools/val_sweep.py                                     # the embedded default: zs, seed 0, under runs/experiments
    python tools/val_sweep.py --out docs/figures                  # also writes val_sweep.md there
    python tools/val_sweep.py -f configs/sketchy_zs.yaml -p data_root /data/Sketchy -p epochs 5   # a real dataset

It takes the main job's parameter flags (`-f PARAMS.yaml`, `-y YAML`, `-p NAME VALUE`). Every run holds validation
classes out of training: a file's `val_classes: 0` (the paper's final protocol) becomes `auto` here, and the
validation classes are then the only ones a score is read on. Each entry is the main job
(`clip_sbir.run.run_experiment`) with that method and rate, cached by its parameters through
`clip_sbir.experiments.run_grid`; the score is the key metric of the run's last validation. The end of the output
is the parameter to give the final runs (`val_classes: 0`), e.g. the baselines notebook's `method_params`.
"""
import argparse, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATES = {'ft': (1e-5, 3e-5, 1e-4, 3e-4, 1e-3), 'lin': (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)}
EPOCHS = (1, 2, 3)

def sweep_params(a)->tuple:
    "(validated base parameters with validation classes, epochs of each rate run, epochs to sweep)"
    from clip_sbir.experiments import run_params
    from clip_sbir.params import params_from_flags
    given = params_from_flags(a)
    if str(given.get('val_classes', 'auto')) in ('0', '0.0'):
        print("val_classes 0 (the final protocol) -> auto: a sweep reads only validation classes", file=sys.stderr)
        given['val_classes'] = 'auto'
    base = run_params(a.mode, overrides=given)
    embedded = base.get('dataset', 'synthetic') == 'synthetic'
    rate_epochs = a.rate_epochs or (1 if embedded else None)    # None: the parameters' own budget
    return base, rate_epochs, (EPOCHS if embedded and not a.no_epochs else ())

def parser()->argparse.ArgumentParser:
    from clip_sbir.params import add_param_flags
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--mode', default='zs')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--root', default='runs/experiments', help="folder of the runs (relative to the repository)")
    ap.add_argument('--out', default='', help="folder to write val_sweep.md into")
    ap.add_argument('--rate-epochs', type=int, default=0, help="epochs of each rate's run (default: 1 on the embedded default, else the parameters')")
    ap.add_argument('--no-epochs', action='store_true', help="skip the epochs sweep of ours (only run on the embedded default)")
    return add_param_flags(ap)

def main(argv=None):
    from clip_sbir.experiments import Variant, run_grid
    a = parser().parse_args(argv)
    base, rate_epochs, epochs = sweep_params(a)
    budget = {'epochs': rate_epochs} if rate_epochs else {}
    lr = [Variant('lr', m, {'method': m, 'lr_other': r, **budget}, r) for m, rs in RATES.items() for r in rs]
    ep = [Variant('epochs', 'ours', {'epochs': e}, e) for e in epochs]
    df = run_grid(lr + ep, base, [a.seed], ROOT/a.root)
    key = df.key.iloc[0]
    rates = sorted({r for rs in RATES.values() for r in rs})
    lines = [f"Validation classes ({a.mode}, {base.get('dataset', 'synthetic')}, seed {a.seed}), {key} of the last validation; "
             "**bold**: the choice.", "",
             f"| `lr_other` ({rate_epochs or 'its'} epoch{'s' if rate_epochs != 1 else ''}) | " + " | ".join(f"{r:g}" for r in rates) + " |",
             "|:--|" + "--:|" * len(rates)]
    best = {}
    for m in RATES:
        d = df[(df.sweep == 'lr') & (df.method == m)].set_index('x').val
        best[m] = d.idxmax()
        lines.append(f"| {m} | " + " | ".join('' if r not in d.index else (f"**{d[r]:.3f}**" if r == best[m] else f"{d[r]:.3f}") for r in rates) + " |")
    if epochs:
        d = df[df.sweep == 'epochs'].set_index('x').val
        lines += ["", "| epochs (ours) | " + " | ".join(str(int(e)) for e in d.index) + " |", "|:--|" + "--:|" * len(d),
                  "| " + key + " | " + " | ".join(f"{v:.3f}" for v in d) + " |"]
    flags = ' '.join(f'-f {f}' for f in a.parameters_file) + ''.join(f' -p {k} {v}' for k, v in a.parameters)
    method_params = '{' + ', '.join(f"{m}: {{lr_other: {best[m]:g}}}" for m in RATES) + '}'
    lines += ["", f"frozen CLIP on the validation classes: {df.val_baseline.iloc[0]:.3f}", "",
              f"command: python tools/val_sweep.py --mode {a.mode} --seed {a.seed}{(' ' + flags) if flags else ''}", "",
              f"final runs (every seen class trains, `val_classes: 0`): `-y \"method_params: {method_params}\"` "
              "for the baselines notebook, or `-p method ft -p lr_other "
              f"{best['ft']:g}` / `-p method lin -p lr_other {best['lin']:g}` for the main job"]
    md = "\n".join(lines)
    print(md)
    if a.out: (ROOT/a.out).mkdir(parents=True, exist_ok=True); (ROOT/a.out/'val_sweep.md').write_text(md + '\n')
    return 0

if __name__ == '__main__': sys.exit(main())
