"""The main job never loses a finished run: the frozen baseline writes everything a trained run writes, and a
dataset tree with corrupt photos and sketches (Sketchy and TU-Berlin layouts) finishes with the
unreadable images counted in metrics.json, while the figures and widgets over the run's features show what
could be read. Trees are hard links to one tiny image (`fake_tree`), built under pytest's tmp_path."""
import json, os
from pathlib import Path

import numpy as np
import papermill as pm
import pytest

from clip_sbir.core import SBIRConfig
from clip_sbir.data.real import load_data
from conftest import small_tree, corrupt, private_cache

ROOT = Path(__file__).resolve().parent.parent
NB = ROOT/'nbs'/'train.ipynb'
TINY = dict(epochs=1, max_steps=2, batch_size=16, n_classes_per_batch=4, val_queries=40)

@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    private_cache(monkeypatch, tmp_path)   # the kernel inherits both
    monkeypatch.setenv('OMP_NUM_THREADS', '1')

def _run(tmp_path, **params)->dict:
    out = tmp_path/'run'
    pm.execute_notebook(str(NB), str(tmp_path/'out.ipynb'), parameters=dict(out_dir=str(out), **params), kernel_name='python3',
                        cwd=str(ROOT), progress_bar=False)
    return json.loads((out/'metrics.json').read_text())

@pytest.mark.slow
@pytest.mark.parametrize('dataset,mode', [('sketchy', 'fg'), ('tuberlin', 'zs')])   # QuickDraw's layout: tests/test_paper_configs.py
def test_corrupt_images_are_counted_and_every_view_works(dataset, mode, tmp_path):
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from clip_sbir.report import plot_examples
    from clip_sbir.run import load_trained, evaluate_encoder, make_encoder
    from clip_sbir.models.clip import load_clip
    from clip_sbir.experiments import per_query_scores, query_wins
    from clip_sbir.widgets import RetrievalBrowser
    root = tmp_path/dataset
    split, sk_dir, ph_dir = small_tree(root, dataset)
    sk, ph = sorted(sk_dir.iterdir()), sorted(ph_dir.iterdir())
    corrupt(sk[1], 'truncated'); corrupt(ph[0], 'garbage'); corrupt(ph[2], 'truncated')   # ph[0] is sk[0]'s pair (Sketchy)
    rec = _run(tmp_path, mode=mode, dataset=dataset, data_root=str(root), split=split, **TINY)
    assert rec['n_unreadable'] == 3 and rec['metrics'].keys() == rec['baseline'].keys()
    assert all(np.isfinite(v) and 0 <= v <= 1 for v in rec['metrics'].values())
    assert {'metrics.json', 'curves.png', 'last.pt', 'log.csv'} <= {p.name for p in (tmp_path/'run').iterdir()}
    # the run's features feed every view: the example figure, per-query comparisons and the browser
    enc, cfg = load_trained(tmp_path/'run')
    te = load_data(cfg.dataset, cfg.data_root, cfg.split).test
    _, feats = evaluate_encoder(enc, te, cfg, return_features=True)
    _, frozen = evaluate_encoder(make_encoder(load_clip(cfg.model, cfg.pretrained), cfg, 'frozen'), te, cfg, return_features=True)
    bad_q = np.flatnonzero(~np.isfinite(feats[0].numpy()).all(1))
    assert len(bad_q) == 1 and (~np.isfinite(feats[1].numpy()).all(1)).sum() == 2
    axs = plot_examples(te, cfg, {'frozen': frozen, 'ours': feats}, n=3, k=3)
    assert axs.shape[0] == 6 and 2 <= axs.shape[1] <= 4          # 3 queries x 2 models; k clipped to the smallest readable gallery
    plt.close('all')
    w = query_wins(per_query_scores(*feats, te, mode), per_query_scores(*frozen, te, mode))
    assert 0 < w['n'] < te.n_sketches
    br = RetrievalBrowser({'frozen': frozen, 'ours': feats}, te.sketch, te.photo, te.sketch_labels, te.photo_labels,
                          te.sketch_pair if mode == 'fg' else None, te.classes, k=5)
    assert br.select(query=int(bad_q[0])).kind == 'unreadable' and 'unreadable image' in br.status.value
    shown = br.select(query=int((bad_q[0] + 1) % te.n_sketches), method='ours').indices
    assert shown and all(np.isfinite(feats[1][i].numpy()).all() for i in shown)

@pytest.mark.parametrize('mode', ['zs', 'fg'])
def test_frozen_baseline_writes_what_a_trained_run_writes(mode, tmp_path):
    "method frozen, on a dataset tree with a corrupt photo: metrics.json (its metrics are its baseline, nothing trained) and the figure"
    split, sk_dir, ph_dir = small_tree(tmp_path/'sketchy', 'sketchy')
    corrupt(sorted(ph_dir.iterdir())[1], 'truncated')
    rec = _run(tmp_path, mode=mode, method='frozen', dataset='sketchy', data_root=str(tmp_path/'sketchy'), split=split)
    assert rec['method'] == 'frozen' and rec['metrics'] == rec['baseline'] and rec['train_seconds'] == 0
    assert rec['n_unreadable'] == 1
    assert {'metrics.json', 'curves.png'} <= {p.name for p in (tmp_path/'run').iterdir()}

def test_trained_run_reloads_without_its_dataset_folder(tmp_path):
    "Validation is pure: `load_trained` rebuilds a Sketchy run's encoder on a machine where its dataset folder does not exist"
    import shutil, torch
    from clip_sbir.core import ConfigError
    from clip_sbir.run import load_trained, run_experiment
    split, _, _ = small_tree(tmp_path/'Sketchy', 'sketchy')
    cfg = SBIRConfig(dataset='sketchy', data_root=str(tmp_path/'Sketchy'), split=split, val_classes='0',
                     out_dir=str(tmp_path/'run'), **TINY)
    run_experiment(cfg, progress=False)
    enc, _ = load_trained(tmp_path/'run')
    shutil.rmtree(tmp_path/'Sketchy')                                               # the dataset is gone
    back, saved = load_trained(tmp_path/'run')
    assert (saved.dataset, saved.data_root, saved.split) == ('sketchy', cfg.data_root, split)
    x = torch.randn(2, 3, enc.image_size, enc.image_size)
    assert torch.allclose(back.encode_sketch(x), enc.encode_sketch(x), atol=1e-6)  # the trained weights, not a fresh model
    with pytest.raises(ConfigError, match="data_root='.*Sketchy' is not valid: expected an existing folder"):
        run_experiment(cfg, progress=False)                                       # running it again still fails first, naming the parameter
