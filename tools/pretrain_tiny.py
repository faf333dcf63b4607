#!/usr/bin/env python
"""Regenerate (or check) the embedded tiny CLIP and print the evidence numbers README quotes.

  python tools/pretrain_tiny.py --check          # evidence of the shipped weights, hash check (about a minute on CPU)
  python tools/pretrain_tiny.py --figures        # also write docs/figures/synthetic_grid.png
  python tools/pretrain_tiny.py --train [--device cuda] [--steps 4000]   # pretrain, overwrite the shipped weights + hash
"""
import argparse, json, os, sys, time

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
    a = ap.parse_args(argv)
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
        model = tiny.pretrain(tiny.create_tiny(a.seed), data, steps=a.steps, seed=a.seed, device=dev, log_every=500)
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
