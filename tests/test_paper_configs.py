"""The paper's parameter files cannot rot without a GPU: each `configs/*.yaml` runs end to end on the CPU
(`tools/dry_run.py`: ViT-B-32 with random weights at 224 px, the file's workers, two optimiser steps, the final
evaluation and metrics.json) on a generated tree of its dataset's first layout holding every class of its split.
A wrong key in a file, or a tree its layout detection no longer finds, fails here."""
import json, math, sys
from pathlib import Path

import pytest, torch, yaml

from clip_sbir.core import ConfigError, SBIRConfig
from clip_sbir.data.real import split_classes
from clip_sbir.eval import FG_KEYS, ZS_KEYS
from clip_sbir.run import METRICS_KEYS
from conftest import private_cache

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import dry_run

CONFIGS = sorted((ROOT/'configs').glob('*.yaml'))
# The folders each dataset's download keeps its <class>/ folders of sketches and photos in, written here independently of
# the library's LAYOUTS: a layout definition that no longer matches the real tree fails the dry run's check below
DOWNLOAD = {'sketchy': ('sketchy_tx', 'sketch/tx_000000000000', 'photo/tx_000000000000'),
            'tuberlin': ('tuberlin_ready', 'png_ready', 'ImageResized_ready'),
            'quickdraw': ('quickdraw_final', 'QuickDraw_sketches_final', 'QuickDraw_images_final')}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    private_cache(monkeypatch, tmp_path)


def test_every_parameter_file_is_dry_run():
    "The parametrisation below is every file of configs/, one per dataset and mode of the paper"
    assert [f.name for f in CONFIGS] == ['quickdraw_zs.yaml', 'sketchy_fg.yaml', 'sketchy_zs.yaml', 'tuberlin_zs.yaml']


@pytest.mark.slow
@pytest.mark.parametrize('config', CONFIGS, ids=[f.stem for f in CONFIGS])
def test_parameter_file_runs_end_to_end_on_the_cpu(config, tmp_path):
    file = yaml.safe_load(config.read_text())
    r = dry_run.dry_run(config, tmp_path)
    rec, run = r['record'], tmp_path/'run'
    # the file as it is, but for what a CPU cannot afford
    _, unseen, seen = split_classes(file['dataset'], file['split'])
    over = {**dry_run.OVERRIDES, 'data_root': str(tmp_path/'data'), 'out_dir': str(run), 'train_classes': dry_run.N_TRAIN_CLASSES / len(seen)}
    assert rec['config'] == SBIRConfig.from_params({**file, **over}).to_dict()
    assert (rec['model'], rec['config']['image_size'], rec['config']['pretrained']) == ('ViT-B-32', 224, 'none')
    assert rec['config']['workers'] == file['workers'] > 0
    layout, sketches, photos = DOWNLOAD[file['dataset']]
    assert r['tree']['layout'] == layout
    for d in (sketches, photos):
        assert sorted(p.name for p in (tmp_path/'data'/d).iterdir()) == sorted(unseen + seen), d
    # every unseen class of the file's split, read once at the end; a handful of seen classes trained on
    assert rec['test_classes'] == unseen and rec['n_query'] == len(unseen)
    assert rec['n_gallery'] == len(unseen)                                       # one photo per unseen class
    assert rec['n_train_classes'] == dry_run.N_TRAIN_CLASSES and len(rec['unused_classes']) == len(seen) - dry_run.N_TRAIN_CLASSES
    assert rec['val_classes'] == [] and rec['checkpoint'] == 'last' and rec['processes'] == 1 and rec['n_unreadable'] == 0
    keys = ZS_KEYS if file['mode'] == 'zs' else FG_KEYS
    for side in ('metrics', 'baseline'):
        assert tuple(rec[side]) == keys and all(math.isfinite(v) and 0 <= v <= 1 for v in rec[side].values()), rec[side]
    # what the run wrote: metrics.json as returned, two logged optimiser steps, the trained weights
    assert tuple(rec) == METRICS_KEYS and json.loads((run/'metrics.json').read_text()) == json.loads(json.dumps(rec))
    log = (run/'log.csv').read_text().splitlines()
    assert log[0].startswith('step,') and [l.split(',')[0] for l in log[1:]] == ['1', '2']
    ck = torch.load(run/'last.pt', map_location='cpu', weights_only=False)
    assert ck['config']['model'] == 'ViT-B-32' and ck['model']


def test_a_broken_file_fails_the_dry_run_naming_what_is_wrong(tmp_path):
    "A misspelt key, or a split its dataset does not have, stops the run before any model is built"
    text = (ROOT/'configs'/'sketchy_fg.yaml').read_text()
    bad = tmp_path/'bad.yaml'
    bad.write_text(text.replace('lambda_cls:', 'lamda_cls:'))
    with pytest.raises(ConfigError, match="parameter='lamda_cls' is not valid.*did you mean 'lambda_cls'"):
        dry_run.dry_run(bad, tmp_path/'a')
    bad.write_text(text.replace('split: s21', 'split: t30_sake'))
    with pytest.raises(ConfigError, match="split='t30_sake' is not valid"):
        dry_run.dry_run(bad, tmp_path/'b')
    assert not (tmp_path/'a'/'run').exists() and not (tmp_path/'b'/'run').exists()


# ---------------------------------------------------------------------------------------------
# README's table of the paper's results: commands and costs, against the split lists
# ---------------------------------------------------------------------------------------------
import lzma
from collections import Counter
import numpy as np
import paper_path

SPLITS = ROOT/'tests'/'data'/'splits'

def _lines(name:str)->list:
    return [l.rsplit(' ', 1)[0] for l in lzma.decompress((SPLITS/name).read_bytes()).decode().splitlines() if l.strip()]

def _steps(per_class:list, P:int, M:int)->int:
    "Batches of P classes x M sketches per epoch, by hand: each class gives n // M chunks of M, and when no class holds more than an epoch's worth the batches use every chunk: sum // P"
    chunks = [n // M for n in per_class]
    T = sum(chunks) // P
    assert max(chunks) <= T, "a class dominates: the plain formula does not apply"
    return T

def _per_class(paths:list)->Counter: return Counter(p.split('/')[-2] for p in paths)

def test_paper_table_counts_what_the_split_lists_hold():
    "Each row of docs/figures/paper_path.json, recounted from the list files by hand; the table is that file"
    rows = {r['result']: r for r in json.loads((ROOT/'docs/figures/paper_path.json').read_text())['rows']}
    assert [r[1] for r in paper_path.ROWS] == [r['command'] for r in rows.values()]
    assert (ROOT/'docs/figures/paper_path.md').read_text() == paper_path.table(list(rows.values()))
    sk_tr = _lines('sketchy_s21/sketch_tx_000000000000_ready_filelist_train.txt.xz')
    ph_tr = _lines('sketchy_s21/all_photo_filelist_train.txt.xz')
    sk_te, ph_te = _lines('sketchy_s21/sketch_tx_000000000000_ready_filelist_zero.txt.xz'), _lines('sketchy_s21/all_photo_filelist_zero.txt.xz')
    # fine-grained: a sketch <id>-<k>.png trains and queries when its class holds the original <id>.jpg
    orig = lambda photos: {(p.split('/')[-2], p.split('/')[-1][:-4]) for p in photos if p.startswith('256x256')}
    def paired(sketches, photos):
        o = orig(photos)
        return [s for s in sketches if (s.split('/')[-2], s.split('/')[-1].rsplit('-', 1)[0]) in o]
    T = {'zs': len(sk_te) + len(ph_te), 'fg': len(paired(sk_te, ph_te)) + len(ph_te)}            # test images per model
    assert (len(sk_te), len(ph_te), T['fg']) == (12694, 12553, 12694 + 12553)
    steps = {'zs': _steps(list(_per_class(sk_tr).values()), 8, 8), 'fg': _steps(list(_per_class(paired(sk_tr, ph_tr)).values()), 8, 8)}
    train = {m: steps[m] * 60 * 64 * (3 if m == 'zs' else 6) for m in steps}                   # a triplet: 3 images, 6 with L_ps
    for m in ('zs', 'fg'):
        r = rows[f"{'ZS' if m == 'zs' else 'FG-ZS'}-SBIR on {'Sketchy-ext' if m == 'zs' else 'Sketchy'} (S21): ours"]
        assert (r['steps_per_epoch'], r['epochs'], r['train_images'], r['eval_images']) == (steps[m], 60, train[m], 2 * T[m])
    tb_tr = _lines('tuberlin_t30_sake/png_ready_filelist_train.txt.xz')
    tb_T = len(_lines('tuberlin_t30_sake/png_ready_filelist_zero.txt.xz')) + len(_lines('tuberlin_t30_sake/ImageResized_ready_filelist_zero.txt.xz'))
    r = rows['ZS-SBIR on TU-Berlin-ext (T30): ours']
    assert (r['train_images'], r['eval_images']) == (_steps(list(_per_class(tb_tr).values()), 8, 8) * 60 * 192, 2 * tb_T) and tb_T == 2400 + 27989
    qd_T = len(_lines('quickdraw_q30/sketch_zero.txt.xz')) + len(_lines('quickdraw_q30/all_photo_zero.txt.xz'))
    r = rows['ZS-SBIR on QuickDraw-ext (Q30): ours']
    assert (r['train_known'], r['train_images'], r['eval_images']) == (False, None, 2 * qd_T)
    # baselines: 5 methods x 3 seeds per mode; frozen CLIP trains nothing and is evaluated once; 2 qualitative passes per mode
    r = next(v for k, v in rows.items() if k.startswith('Baselines B-FT'))
    assert (r['runs'], r['trained_runs']) == (30, 24)
    assert (r['train_images'], r['eval_images']) == (12 * (train['zs'] + train['fg']), sum((3 + 12 * 2 + 2) * T[m] for m in T))
    r = rows['Baselines on TU-Berlin-ext']
    assert (r['runs'], r['train_images'], r['eval_images']) == (15, 12 * _steps(list(_per_class(tb_tr).values()), 8, 8) * 60 * 192, 29 * tb_T)
    # ablations, 3 seeds: zs full, frozen, no_cls, no_ln, K = 0 1 2 4 6 (K=3 is the full run), 5 shares of the seen
    # classes at 4 classes per batch; fg full, frozen, no_cls, no_div, no_ps (3 images a triplet), no_ln, n=3
    order, n_of = split_classes('sketchy', 's21')[2], _per_class(sk_tr)   # the seen classes in the split's order; their sketches
    assert sorted(order) == sorted(n_of)
    frac = 0
    for s in (0, 1, 2):
        for f in (0.2, 0.4, 0.6, 0.8, 1.0):
            keep = order if f == 1 else [order[i] for i in sorted(np.random.RandomState(s).choice(104, int(round(f * 104)), replace=False))]
            frac += _steps([n_of[c] for c in keep], 4, 16) * 60 * 192
    r = next(v for k, v in rows.items() if k.startswith('Ablations on Sketchy'))
    assert (r['runs'], r['trained_runs']) == (3 * (4 + 5 + 5 + 7), 3 * (3 + 5 + 5 + 6))
    assert r['train_images'] == 3 * (8 * train['zs'] + 5 * train['fg'] + steps['fg'] * 60 * 192) + frac
    assert r['eval_images'] == 3 * ((13 * 2 + 1) * T['zs'] + (6 * 2 + 1) * T['fg'])


@pytest.mark.slow
def test_paper_table_is_current():
    "tools/paper_path.py --check: the committed table is what the commands and the lists give now (a changed default fails it)"
    assert paper_path.main(['--check'])['rows'][0]['steps_per_epoch'] > 0
