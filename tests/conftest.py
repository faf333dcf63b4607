"""Shared pytest fixtures and dataset trees: repository paths; tests never download anything."""
import os
from pathlib import Path
import pytest

from clip_sbir.data.real import LAYOUTS, fake_tree, split_classes

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault('MPLBACKEND', 'Agg')

@pytest.fixture(scope='session')
def root() -> Path: return ROOT


# Small dataset trees in common layouts, hard links to one tiny image (`fake_tree`)
def corrupt(path:Path, how:str):
    "Replace a (hard-linked) image by a truncated or garbage copy, leaving its other links intact"
    data = path.read_bytes(); path.unlink()
    path.write_bytes(data[:len(data) // 2] if how == 'truncated' else b'not an image at all')

def small_tree(root:Path, dataset:str)->tuple:
    "A small tree of `dataset` in a common layout; returns (split, the unseen classes' folders (sketch, photo) of the first class)"
    split = {'sketchy': 's21', 'tuberlin': 't30_sake', 'quickdraw': 'q30'}[dataset]
    _, te, tr = split_classes(dataset, split)
    layout = {'sketchy': 'sketchy_tx', 'tuberlin': 'sketches_images', 'quickdraw': 'quickdraw_final'}[dataset]
    L, files = LAYOUTS[layout], []
    for i, c in enumerate(te + tr):
        f = c.replace(' ', '_') if layout == 'sketches_images' else c
        n_ph = 3 if c in te else 2
        if dataset == 'sketchy':
            ph = [f'n{2000000 + i:08d}_{1000 + j}.jpg' for j in range(n_ph)]
            sk = [f'{p[:-4]}-{k}.png' for p in ph for k in (1, 2)]
        else:
            ph = [f'n{4000000 + i:08d}_{j}.jpg' for j in range(n_ph)]
            sk = [f'{100 * i + k}.png' for k in range(4)]
        files += [f'{L.sketch[0]}/{f}/{n}' for n in sk] + [f'{L.photo[0]}/{f}/{n}' for n in ph]
    fake_tree(root, files)
    f0 = te[0].replace(' ', '_') if layout == 'sketches_images' else te[0]
    return split, root/L.sketch[0]/f0, root/L.photo[0]/f0

