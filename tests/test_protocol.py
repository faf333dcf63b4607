"""Zero-shot means unseen: every image reader of a run is instrumented, and no image of an unseen (test) class is
decoded before the final evaluation starts; there each test image is decoded exactly once per encoder evaluated.
metrics.json names the train, validation and test classes: pairwise disjoint, together the dataset's classes."""
import json
from pathlib import Path

import pytest

import clip_sbir.run as run
from clip_sbir.data.core import FileReader, ArrayReader
from clip_sbir.data.real import load_data
from conftest import small_tree, private_cache

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT/'configs'
TINY = dict(epochs=1, max_steps=3, batch_size=16, n_classes_per_batch=4, val_queries=40)

@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    private_cache(monkeypatch, tmp_path)   # no feature cache from an earlier run: every image is decoded

def _instrument(monkeypatch)->dict:
    "Log every image decode as (phase, reader id, reference); the phase turns 'final' when the final evaluation starts"
    log = {'phase': 'before', 'reads': []}
    for cls in (FileReader, ArrayReader):
        def call(self, ref, _orig=cls.__call__):
            log['reads'].append((log['phase'], id(self), ref if isinstance(ref, str) else int(ref)))
            return _orig(self, ref)
        monkeypatch.setattr(cls, '__call__', call)
    final, load = run.final_evaluation, run.load_run_data
    def final_evaluation(*a, **k):
        log['phase'] = 'final'
        return final(*a, **k)
    def load_run_data(cfg):
        log['data'] = load(cfg)
        return log['data']
    monkeypatch.setattr(run, 'final_evaluation', final_evaluation)
    monkeypatch.setattr(run, 'load_run_data', load_run_data)
    return log

def _check(log:dict, rec:dict, all_classes:list, n_encoders:int):
    te = log['data'].test
    unseen = {(id(te.reader), p) for p in te.photos} | {(id(te.sketch_reader or te.reader), s) for s in te.sketches}
    early = [r for ph, *r in log['reads'] if ph == 'before' and tuple(r) in unseen]
    assert not early, f"{len(early)} unseen-class images decoded before the final evaluation, e.g. {early[:3]}"
    final = [tuple(r) for ph, *r in log['reads'] if ph == 'final']
    counts = {r: final.count(r) for r in unseen}
    assert set(counts.values()) == {n_encoders}, f"test images decoded {sorted(set(counts.values()))} times, expected {n_encoders}"
    assert any(ph == 'before' for ph, *_ in log['reads'])          # training and validation did read (seen) images
    tr, va, ts = (set(rec[k]) for k in ('train_classes', 'val_classes', 'test_classes'))
    assert not (tr & va) and not (tr & ts) and not (va & ts) and tr | va | ts == set(all_classes)
    assert len(va) >= 2 and rec['checkpoint'] == ('last' if n_encoders == 2 else 'frozen')
    assert [h['epoch'] for h in rec['val_history']] and all(k in rec['val_history'][0] for k in rec['metrics'])

@pytest.mark.parametrize('mode', ['zs', 'fg'])
def test_unseen_classes_are_read_once_at_the_end(mode, tmp_path, monkeypatch):
    from clip_sbir.data.synthetic import CATEGORIES
    log = _instrument(monkeypatch)
    run.main(['-p', 'mode', mode, '-p', 'out_dir', str(tmp_path/'run')] + sum((['-p', k, str(v)] for k, v in TINY.items()), []))
    rec = json.loads((tmp_path/'run'/'metrics.json').read_text())
    _check(log, rec, list(CATEGORIES), n_encoders=2)

def test_on_a_real_layout_tree(tmp_path, monkeypatch):
    split, *_ = small_tree(tmp_path/'Sketchy', 'sketchy')
    log = _instrument(monkeypatch)
    run.main(['-p', 'mode', 'fg', '-p', 'dataset', 'sketchy', '-p', 'data_root', str(tmp_path/'Sketchy'), '-p', 'split', split,
              '-p', 'out_dir', str(tmp_path/'run')] + sum((['-p', k, str(v)] for k, v in TINY.items()), []))
    rec = json.loads((tmp_path/'run'/'metrics.json').read_text())
    d = load_data('sketchy', str(tmp_path/'Sketchy'), split)
    _check(log, rec, d.train.classes + d.test.classes, n_encoders=2)

def test_frozen_reads_the_test_set_once(tmp_path, monkeypatch):
    from clip_sbir.data.synthetic import CATEGORIES
    log = _instrument(monkeypatch)
    run.main(['-p', 'mode', 'zs', '-p', 'method', 'frozen', '-p', 'out_dir', str(tmp_path/'run')])
    rec = json.loads((tmp_path/'run'/'metrics.json').read_text())
    te = log['data'].test
    unseen = {(id(te.reader), p) for p in te.photos} | {(id(te.sketch_reader or te.reader), s) for s in te.sketches}
    final = [tuple(r) for ph, *r in log['reads'] if ph == 'final']
    assert {final.count(r) for r in unseen} == {1} and not [r for ph, *r in log['reads'] if ph == 'before' and tuple(r) in unseen]
    assert rec['checkpoint'] == 'frozen' and rec['val_history'] == []

def test_val_classes_zero_trains_on_every_seen_class(tmp_path):
    rec = run.main(['-p', 'mode', 'zs', '-p', 'val_classes', '0', '-p', 'out_dir', str(tmp_path/'run')] +
                   sum((['-p', k, str(v)] for k, v in TINY.items()), []))
    assert rec['val_classes'] == [] and len(rec['train_classes']) == 32 and rec['val_history'] == []
    assert not (tmp_path/'run'/'best.pt').exists() and (tmp_path/'run'/'last.pt').exists()

@pytest.mark.parametrize('dataset', ['sketchy', 'tuberlin', 'quickdraw'])
def test_paper_files_train_on_every_seen_class(dataset, tmp_path):
    "configs/*.yaml follow the paper's protocol: val_classes 0, so a run of the file trains on all seen classes of its split"
    from clip_sbir.core import SBIRConfig
    from clip_sbir.params import read_params_file
    split, *_ = small_tree(tmp_path/dataset, dataset)
    name = {'sketchy': 'sketchy_zs', 'tuberlin': 'tuberlin_zs', 'quickdraw': 'quickdraw_zs'}[dataset]
    params = read_params_file(CONFIGS/f'{name}.yaml')
    assert params['val_classes'] == 0 and params['split'] == split
    data = run.load_run_data(SBIRConfig.from_params({**params, 'data_root': str(tmp_path/dataset)}))
    n_seen = {'sketchy': 104, 'tuberlin': 220, 'quickdraw': 80}[dataset]
    assert data.val is None and len(data.train.classes) == n_seen and not set(data.train.classes) & set(data.test.classes)

@pytest.mark.slow
def test_metrics_json_scores_the_saved_weights_and_best_pt_the_best_validation(tmp_path):
    """metrics.json's `metrics` is a fresh scoring of last.pt on the unseen classes and `baseline` one of frozen CLIP;
    best.pt holds the step of the highest validation score in the history, and its weights score that again"""
    from clip_sbir.core import SBIRConfig
    from clip_sbir.models.clip import load_clip
    from clip_sbir.train import load_checkpoint
    out = tmp_path/'run'
    rec = run.main(['-p', 'mode', 'zs', '-p', 'epochs', '3', '-p', 'train_classes', '0.15', '-p', 'batch_size', '16',
                    '-p', 'n_classes_per_batch', '4', '-p', 'val_queries', '40', '-p', 'out_dir', str(out)])
    enc, cfg = run.load_trained(out, 'last')
    data = run.load_run_data(cfg)
    fresh = run.evaluate_encoder(enc, data.test, cfg)
    frozen = run.evaluate_encoder(run.make_encoder(load_clip(cfg.model, cfg.pretrained), cfg, 'frozen'), data.test, cfg)
    assert rec['metrics'].keys() == rec['baseline'].keys() and rec['metrics'] != rec['baseline']
    for k in rec['metrics']: assert rec['metrics'][k] == pytest.approx(fresh[k], abs=1e-9) and rec['baseline'][k] == pytest.approx(frozen[k], abs=1e-9), k
    if (ROOT/'.git').exists(): assert rec['git_sha'] not in ('', 'unknown'), rec['git_sha']
    hist, key = rec['val_history'], 'mAP@all'
    assert len(hist) == 3 and len({h[key] for h in hist}) > 1, hist                 # three different validations to choose from
    best = max(hist, key=lambda h: h[key])                                          # the first of equal maxima, as the keep rule
    assert load_checkpoint(out/'best.pt')['step'] == best['step']
    enc_best, _ = run.load_trained(out, 'best')
    assert run.validation(data, cfg)(enc_best)[key] == pytest.approx(best[key], abs=1e-9)
