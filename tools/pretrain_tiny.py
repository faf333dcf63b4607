#!/usr/bin/env python
"""Regenerate (or check) the embedded tiny CLIP and print the evidence numbers README quotes.

  python tools/pretrain_tiny.py --check          # evidence of the shipped weights, hash check (about a minute on CPU)
  python tools/pretrain_tiny.py --figures        # also write docs/figures/synthetic_grid.png
  python tools/pretrain_tiny.py --train [--device cuda] [--steps 4000]   # pretrain, overwrite the shipped weights + hash
  python tools/pretrain_tiny.py --train --recipe clean --init embedded --steps 1500 --lr 2e-4 \
      --ckpt runs/pretrain/clean/ckpt.pt --out runs/pretrain/clean/weights.safetensors   # rerun the same line to resume

Recipes (nbs/93a_embedded.ipynb): 'shipped' is how the shipped weights were made (category, colour and
size captions; flips and 4-px shifts; random tokens appended to half the batches); 'clean' keeps what
tells instances apart (captions that also name the pose, no flips, 2-px shifts, no appended tokens).
With --ckpt the run checkpoints every 100 steps and continues from the file when rerun (--stop-at N
ends a sitting after step N); judge the result with `python tools/world_card.py --pretrained <out>`.
"""
import argparse, json, os, sys, time

RECIPES = {'shipped': {},   # pretrain's defaults
           'clean': dict(flip=False, shift=2, p_extra=0., pose_captions=True)}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--train', action='store_true', help='pretrain from the seed and overwrite the shipped weights and their hash')
    ap.add_argument('--check', action='store_true', help='print the evidence of the shipped weights and check their hash')
    ap.add_argument('--figures', action='store_true', help='write docs/figures/synthetic_grid.png')
    ap.add_argument('--device', default='auto', help="auto | cpu | cuda")
    ap.add_argument('--steps', type=int, default=4000)
    ap.add_argument('--n-per-class', type=int, default=400)
    ap.add_argument('--drawing-frac', type=float, default=.35)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', default='', help='write the weights here instead of the package assets')
    ap.add_argument('--recipe', default='shipped', choices=sorted(RECIPES), help="how to pretrain (see above)")
    ap.add_argument('--init', default='random', help="'random' (seeded), 'embedded' (the shipped weights) or a weights file to start from")
    ap.add_argument('--lr', type=float, default=5e-4)
    ap.add_argument('--batch-size', type=int, default=256)
    ap.add_argument('--warmup', type=int, default=200)
    ap.add_argument('--ckpt', default='', help="checkpoint file: resumed from when it exists")
    ap.add_argument('--stop-at', type=int, default=None, help="end this sitting after this step (needs --ckpt)")
    a = ap.parse_args(argv)
    if a.stop_at is not None and not a.ckpt: ap.error(f"--stop-at {a.stop_at} needs --ckpt, to continue from")
    if a.init not in ('random', 'embedded') and not os.path.isfile(a.init): ap.error(f"--init {a.init}: expected 'random', 'embedded' or an existing weights file")
    import torch
    from clip_sbir.core import EMBEDDED_MODEL, assets_path, resolve_device
    from clip_sbir.models.clip import load_clip
    from clip_sbir.data.synthetic import load_synthetic, plot_world
    from clip_sbir import embedded as tiny
    dev = resolve_device(a.device)
    path = a.out or str(assets_path(tiny.WEIGHTS_FILE))
    if a.train:
        t = time.time()
        data = tiny.pretrain_images(a.n_per_class, a.drawing_frac, a.seed, workers=os.cpu_count() or 1)
        print(f"pretraining images {data['images'].shape} in {time.time() - t:.0f}s", flush=True)
        t = time.time()
        init = tiny.create_tiny(a.seed) if a.init == 'random' else load_clip(EMBEDDED_MODEL, a.init)
        model = tiny.pretrain(init, data, steps=a.steps, batch_size=a.batch_size, lr=a.lr, warmup=a.warmup, seed=a.seed, device=dev, log_every=100,
                              ckpt=a.ckpt or None, stop_at=a.stop_at, **RECIPES[a.recipe])
        if a.stop_at is not None and a.stop_at < a.steps:
            print(f"stopped after step {a.stop_at} of {a.steps}: rerun the same command without --stop-at (or a later one) to continue", flush=True)
            return 0
        sha = tiny.save_weights(model, path)
        if not a.out: assets_path('clip-sbir-tiny.sha256').write_text(sha + '\n')
        print(f"pretrained on {dev} in {time.time() - t:.0f}s: {path} sha256 {sha}", flush=True)
    t = time.time(); world = load_synthetic(); tw = time.time() - t
    t = time.time(); model = load_clip(EMBEDDED_MODEL, path, dev); tm = time.time() - t
    sha = tiny.file_sha256(path)
    ev = tiny.evidence(model, world, dev)
    print(f"world loaded in {tw:.1f}s, tiny CLIP in {tm:.1f}s")
    print(f"weights {path}: {os.path.getsize(path) / 1e6:.1f} MB, sha256 {sha}")
    print(json.dumps({k: round(v, 4) for k, v in ev.items()}))
    ok = True
    if a.check and not a.out:
        ok = sha == tiny.recorded_sha256()
        print('hash matches the recorded one' if ok else f'HASH MISMATCH: recorded {tiny.recorded_sha256()}')
    if a.figures:
        import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'docs', 'figures'); os.makedirs(root, exist_ok=True)
        ax = plot_world(world.test, n_classes=8, n_photos=2, n_sketches=3)
        ax.set_title('unseen categories: each photo followed by three of its sketches', fontsize=9)
        f = os.path.join(root, 'synthetic_grid.png'); ax.figure.savefig(f, dpi=90, bbox_inches='tight'); plt.close(ax.figure)
        from PIL import Image   # a 256-colour palette keeps the PNG small (noisy photo backgrounds compress badly)
        Image.open(f).convert('RGB').quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(f, optimize=True)
        print(f"figure {os.path.normpath(f)} ({os.path.getsize(f) / 1e3:.0f} KB)")
    return 0 if ok else 1

if __name__ == '__main__': sys.exit(main())
