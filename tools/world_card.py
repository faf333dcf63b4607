#!/usr/bin/env python
"""The world card of the embedded default: what the world and the tiny CLIP give each part of the method
to act on, measured with CLIP frozen on the seen and the unseen categories (nbs/93b_world_card.ipynb).

  python tools/world_card.py                                   # the shipped weights -> docs/figures/world_card.{md,json} and world_card_deltas.png
  python tools/world_card.py --pretrained runs/w.safetensors --out runs/card   # other weights (of clip-sbir-tiny), elsewhere

About a minute on an idle 2-core CPU, plus half a minute the first time to generate the world.
Judge a change to the world or the pretraining on the seen side; the unseen side is for the record.
"""
import argparse, io, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--pretrained', default='embedded', help="'embedded' (the shipped weights) or a weights file of clip-sbir-tiny")
    ap.add_argument('--out', default='docs/figures', help="folder for world_card.md, .json and world_card_deltas.png (relative to the repository)")
    ap.add_argument('--seed', type=int, default=0, help="seed of the card's own draws (prompt draws, image samples)")
    a = ap.parse_args(argv)
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from PIL import Image
    from clip_sbir.core import EMBEDDED_MODEL, assets_path, write_atomic, write_json
    from clip_sbir.data.synthetic import load_synthetic
    from clip_sbir.embedded import WEIGHTS_FILE, file_sha256
    from clip_sbir.models.clip import load_clip
    from clip_sbir.world_card import card_table, plot_card_deltas, world_card
    weights = assets_path(WEIGHTS_FILE) if a.pretrained == 'embedded' else Path(a.pretrained)
    if not weights.is_file(): ap.error(f"--pretrained {a.pretrained}: expected 'embedded' or an existing weights file")
    out = ROOT / a.out
    out.mkdir(parents=True, exist_ok=True)
    t = time.time()
    card = world_card(load_clip(EMBEDDED_MODEL, a.pretrained), load_synthetic(), seed=a.seed, progress=True)
    sha = file_sha256(weights)
    cmd = 'python tools/world_card.py' + ('' if a.pretrained == 'embedded' else f' --pretrained {a.pretrained}')
    table = card_table(card) + f"\n\nweights: `{weights.name}` (sha256 `{sha[:16]}…`); command: `{cmd}`\n"
    write_atomic(out / 'world_card.md', lambda f: f.write(table.encode()))
    summary = {side: {k: v for k, v in c.items() if k not in ('deltas', 'delta_labels')} for side, c in card.items()}   # the figure holds the deltas
    write_json({'weights': weights.name, 'sha256': sha, 'seed': a.seed, **summary}, out / 'world_card.json')
    fig, axs = plt.subplots(1, 2, figsize=(13, 3), gridspec_kw=dict(width_ratios=[3, 1]))
    plot_card_deltas(card['seen'], axs[0], title="seen categories: each sketch's mean delta, frozen tiny CLIP")
    plot_card_deltas(card['unseen'], axs[1], title='unseen categories')
    axs[0].tick_params(axis='x', labelrotation=90)
    axs[1].tick_params(axis='x', labelrotation=90)
    def save(f):   # a 64-colour palette keeps the PNG small (thousands of translucent points compress badly)
        buf = io.BytesIO()
        fig.savefig(buf, format='png', dpi=80, bbox_inches='tight')
        Image.open(buf).convert('RGB').quantize(64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(f, format='png', optimize=True)
    write_atomic(out / 'world_card_deltas.png', save)
    print(table)
    print(f"written to {a.out}/world_card.md, world_card.json, world_card_deltas.png in {time.time() - t:.0f} s", file=sys.stderr)
    return 0

if __name__ == '__main__': sys.exit(main())
