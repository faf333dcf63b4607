"""Real-dataset loaders on trees a notebook cannot build cheaply: every layout with the real class names
and file naming, full-size trees that follow the standard split lists, and multi-worker / multi-process
DataLoader checks. Trees are hard links to one tiny image (`fake_tree`), built under pytest's tmp_path."""
import os, re, time, warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from clip_sbir.core import SBIRConfig, ConfigError
from clip_sbir.data.core import ImageDataset, collate_skip, sbir_transform
from clip_sbir.data.real import (LAYOUTS, fake_tree, load_dataset, load_data, describe, split_classes, read_filelist,
                                 photo_id, detect_layout, class_key)
from clip_sbir.data.samplers import TripletDataset, ClassBalancedBatchSampler, make_train_loader
from conftest import private_cache

ROOT = Path(__file__).resolve().parent.parent
# The standard split file lists (SAKE / ZSE-SBIR family) ship with the tests, xz-compressed (tests/data/splits/README.md);
# the tests that read them decompress them once per session.
SHIPPED = ROOT/'tests'/'data'/'splits'

@pytest.fixture(scope='session')
def lists(tmp_path_factory)->Path:
    "A folder of the decompressed split file lists"
    import lzma
    out = tmp_path_factory.mktemp('splits')
    for f in SHIPPED.rglob('*.txt.xz'):
        dest = out/f.relative_to(SHIPPED).with_suffix('')
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(lzma.decompress(f.read_bytes()))
    return out

@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    "Each test caches its indexes in its own folder"
    private_cache(monkeypatch, tmp_path)

# ---------------------------------------------------------------------------------------------
# Miniature trees in every layout, with the real class names and file naming
# ---------------------------------------------------------------------------------------------
def folder(layout, cls):
    "How each layout's copies spell a class folder (nbs/datasets_and_splits.md, section 2)"
    if layout in ('sketchy_tx', 'flat', 'flat_nobasic'): return cls.replace('-', '_')   # hot_air_balloon, jack_o_lantern
    if layout == 'sketches_images': return re.sub(r'[ -]', '_', cls)                    # TU-Berlin: spaces, hyphens -> _
    return cls                                                                          # file lists' own spelling

def sketchy_class(c, i, n_orig, n_ext):
    "Sketchy file names: originals <wnid>_<n>.jpg with sketches <wnid>_<n>-<k>.png (1 + j % 3 each), extended ext_<n>.jpg"
    photos = [f'n{2000000 + i:08d}_{1000 + j}.jpg' for j in range(n_orig)]
    sketches = [f'{p[:-4]}-{k}.png' for j, p in enumerate(photos) for k in range(1, 2 + j % 3)]
    return sketches, photos, [f'ext_{j}.jpg' for j in range(n_ext)]

def sketchy_tree(root, layout, n_test=(3, 2), n_train=(2, 1)):
    "A miniature Sketchy-ext in `layout`; returns {class_key(class): (sketches, originals, extended)} over all 125 classes"
    _, te, tr = split_classes('sketchy', 's21')
    spec, files = {}, []
    for i, c in enumerate(te + tr):
        sk, ph, ext = sketchy_class(c, i, *(n_test if c in te else n_train))
        if not layout.startswith('flat'): ext = ext + ph[:1]        # copies whose extended folder repeats the originals
        spec[class_key(c)] = sk, ph, ext
        f = folder(layout, c)
        if layout in ('flat', 'flat_nobasic'):
            files += [f'sketch/{f}/{n}' for n in sk] + [f'photo/{f}/{n}' for n in ph + ext]
            if layout == 'flat': files += [f'photo_basic/{f}/{n}' for n in ph]       # originals again: counted once
        else:
            L = LAYOUTS[layout]
            files += [f'{L.sketch[0]}/{f}/{n}' for n in sk] + [f'{L.photo[0]}/{f}/{n}' for n in ph] + [f'{L.extended[0]}/{f}/{n}' for n in ext]
    fake_tree(root, files)
    return spec

class _Loose(dict):
    "A dict keyed by class_key: 'jack_o_lantern' finds 'jack-o-lantern'"
    def __getitem__(self, c): return super().__getitem__(class_key(c))

@pytest.mark.parametrize('layout', ['sketchy_tx', 'sketchy_filelist', 'flat', 'flat_nobasic'])
@pytest.mark.parametrize('split', ['s21', 's25_sake', 's25_sempcyc'])
def test_sketchy_layouts(tmp_path, layout, split):
    spec = _Loose(sketchy_tree(tmp_path/'Sketchy', layout))
    _, te, tr = split_classes('sketchy', split)
    d = load_dataset('sketchy', tmp_path, split)                                       # found one level down
    assert d.layout == ('flat' if layout.startswith('flat') else layout) and d.split == split
    assert d.test.classes == te and d.train.classes == tr and not set(te) & set(tr)
    for side, classes in ((d.test, te), (d.train, tr)):
        assert side.counts() == {c: (len(spec[c][0]), len(spec[c][1]) + len(spec[c][2])) for c in classes}
        # fine-grained pairs: every sketch <id>-<k>.png -> the original <id>.jpg of its class
        assert (side.sketch_pair >= 0).all()
        for i in range(0, side.n_sketches, 7):
            s, p = side.sketches[i], side.photos[side.sketch_pair[i]]
            assert photo_id(s.rsplit('/', 1)[1]) == p.rsplit('/', 1)[1][:-4] and side.photo_basic[side.sketch_pair[i]]
            assert side.sketch_labels[i] == side.photo_labels[side.sketch_pair[i]]
        assert side.photo_basic.sum() == sum(len(spec[c][1]) for c in classes)
    ext = load_dataset('sketchy', tmp_path/'Sketchy', split, gallery='extended').test
    assert ext.counts() == {c: (len(spec[c][0]), len(spec[c][2])) for c in te} and not ext.photo_basic.any()
    assert np.asarray(d.test.photo(0)).shape == (8, 8, 3)

def tuberlin_files(layout, cls, i, n_sk, n_ph):
    L = LAYOUTS[layout]; f = folder(layout, cls)
    return ([f'{L.sketch[0]}/{f}/{80 * i + k + 1}.png' for k in range(n_sk)] +
            [f'{L.photo[0]}/{f}/n{4000000 + i:08d}_{k}.JPEG' for k in range(n_ph)])

@pytest.mark.parametrize('layout', ['tuberlin_ready', 'sketches_images'])
@pytest.mark.parametrize('split', ['t30_sake', 't30_sempcyc'])
def test_tuberlin_layouts(tmp_path, layout, split):
    _, te, tr = split_classes('tuberlin', split)
    cls = split_classes('tuberlin', 't30_sake')[1] + split_classes('tuberlin', 't30_sake')[2]   # all 250
    fake_tree(tmp_path, [p for i, c in enumerate(cls) for p in tuberlin_files(layout, c, i, 2 + i % 2, 1 + i % 3)])
    n = _Loose({class_key(c): (2 + i % 2, 1 + i % 3) for i, c in enumerate(cls)})
    d = load_dataset('tuberlin', tmp_path, split)
    assert (d.layout, len(d.test.classes), len(d.train.classes)) == (layout, 30, 220)
    assert d.test.counts() == {c: n[c] for c in te} and d.train.counts() == {c: n[c] for c in tr}
    assert d.test.sketch_pair is None
    # loose names: 'hot air balloon' / hot_air_balloon, 'bear (animal)' / bear_(animal), 'frying-pan' / frying_pan
    assert 'hot air balloon' in d.test.classes or 'hot air balloon' in d.train.classes
    with pytest.raises(ConfigError, match="gallery='extended'"): load_dataset('tuberlin', tmp_path, split, gallery='extended')

@pytest.mark.parametrize('layout', ['quickdraw_final', 'sketches_images'])
def test_quickdraw_layouts(tmp_path, layout):
    _, te, tr = split_classes('quickdraw', 'q30')
    L, files, n = LAYOUTS[layout], [], {}
    for i, c in enumerate(te + tr):
        f = folder(layout, c)
        sk = [f'{L.sketch[0]}/{f}/{4503599627370496 + 1000 * i + k}.png' for k in range(1 + i % 3)]      # key ids
        ph = [f'{L.photo[0]}/{f}/image_{k:05d}.jpg' for k in range(1 + i % 2)] + [f'{L.photo[0]}/{f}/{i}. a photo [1].jpeg']
        files += sk + ph; n[c] = (len(sk), len(ph))
    fake_tree(tmp_path/'QuickDraw', files)
    d = load_dataset('quickdraw', tmp_path)
    assert (d.layout, d.split) == (layout, 'q30')
    assert d.test.counts() == {c: n[c] for c in te} and d.train.counts() == {c: n[c] for c in tr}

# ---------------------------------------------------------------------------------------------
# Full size: trees that follow the split lists exactly give the test-set sizes the lists give
# ---------------------------------------------------------------------------------------------
# Per-class (sketches, photos) of QuickDraw-ext's Q30 unseen classes: the line counts of
# quickdraw_q30/sketch_zero.txt and all_photo_zero.txt (checked against the lists below when present).
Q30_COUNTS = {'bat': (3001, 1996), 'cow': (3001, 1576), 'dolphin': (3001, 1619), 'door': (3001, 2084), 'giraffe': (3001, 1735),
              'helicopter': (3001, 1654), 'mouse': (3001, 2154), 'raccoon': (3001, 1851), 'rhinoceros': (3001, 1817),
              'saw': (3001, 1791), 'scissors': (3001, 1759), 'skyscraper': (3001, 1925), 'tree': (3001, 1614),
              'windmill': (3001, 1839), 'feather': (3001, 1576), 'campfire': (3001, 1304), 'palm tree': (3001, 1626),
              'fire_hydrant': (3001, 2000), 'bread': (3001, 1961), 'beach': (3001, 1677), 'megaphone': (3001, 1894),
              'cactus': (3001, 2043), 'zebra': (3001, 1599), 'tiger': (3001, 2726), 'shark': (3001, 1315), 'frog': (3001, 2118),
              'banana': (3001, 1705), 'cake': (5262, 1709), 'hamburger': (3001, 1873), 'fan': (3001, 1611)}

def test_quickdraw_q30_full_size(tmp_path):
    "92,291 sketches and 54,151 photos in the Q30 test set, in the *_final layout; the index is cached"
    _, te, tr = split_classes('quickdraw', 'q30')
    files = []
    for i, c in enumerate(te):
        ns, npho = Q30_COUNTS[c]
        files += [f'QuickDraw_sketches_final/{c}/{4503599627370496 + 10000 * i + k}.png' for k in range(ns)]
        files += [f'QuickDraw_images_final/{c}/image_{k:05d}.jpg' for k in range(npho)]
    files += [f'QuickDraw_sketches_final/{c}/{k}.png' for c in tr for k in range(3)] + [f'QuickDraw_images_final/{c}/{k}.jpg' for c in tr for k in range(2)]
    fake_tree(tmp_path, files)
    d = load_dataset('quickdraw', tmp_path, 'q30')
    assert (d.test.n_sketches, d.test.n_photos) == (92291, 54151)
    assert (d.train.n_sketches, d.train.n_photos) == (240, 160)
    assert d.test.counts() == Q30_COUNTS
    _, _, dirs = detect_layout(tmp_path, 'quickdraw')
    t = time.perf_counter(); d2 = load_dataset('quickdraw', tmp_path, 'q30'); t2 = time.perf_counter() - t
    assert d2.test.sketches == d.test.sketches and d2.test.photos == d.test.photos
    from clip_sbir.data.real import index_root
    ix = index_root(tmp_path, 'quickdraw_final', dirs)
    assert (ix.rescanned, ix.reused) == (0, 220)                                     # all from the cache
    print(f"Q30 full size: cached load {t2:.2f} s")

def test_q30_counts_match_the_lists(lists):
    for lst, k in (('sketch_zero.txt', 0), ('all_photo_zero.txt', 1)):
        got = Counter(p.split('/')[-2] for p, _ in read_filelist(lists/'quickdraw_q30'/lst))
        assert got == {c: v[k] for c, v in Q30_COUNTS.items()}

def _list_paths(lists, *names):
    return [p for n in names for p, _ in read_filelist(lists/n)]

def test_sketchy_s21_full_size_from_lists(tmp_path, lists):
    "The S21 lists, file for file, in the file-list layout: 12,694 / 12,553 test (10,453 extended-only), 57,587 / 72,949 train"
    fake_tree(tmp_path, _list_paths(lists, 'sketchy_s21/sketch_tx_000000000000_ready_filelist_zero.txt', 'sketchy_s21/all_photo_filelist_zero.txt',
                                    'sketchy_s21/sketch_tx_000000000000_ready_filelist_train.txt', 'sketchy_s21/all_photo_filelist_train.txt'))
    d = load_dataset('sketchy', tmp_path)
    assert (d.layout, d.split) == ('sketchy_filelist', 's21')
    assert (d.test.n_sketches, d.test.n_photos, d.train.n_sketches, d.train.n_photos) == (12694, 12553, 57587, 72949)
    assert load_dataset('sketchy', tmp_path, gallery='extended').test.n_photos == 10453
    # pairs: a test sketch is paired iff the list holds an original photo of its class with its id
    orig = {(p.split('/')[-2], p.split('/')[-1][:-4]) for p in _list_paths(lists, 'sketchy_s21/all_photo_filelist_zero.txt') if p.startswith('256x256')}
    want = sum((p.split('/')[-2], photo_id(p.split('/')[-1])) in orig for p in _list_paths(lists, 'sketchy_s21/sketch_tx_000000000000_ready_filelist_zero.txt'))
    assert int((d.test.sketch_pair >= 0).sum()) == want and want > 0
    assert int(d.test.photo_basic.sum()) == 2100

def test_tuberlin_t30_full_size_from_lists(tmp_path, lists):
    "The T30-SAKE lists, file for file: 2,400 sketches and 27,989 photos in the test set"
    _, te, tr = split_classes('tuberlin', 't30_sake')
    fake_tree(tmp_path/'TUBerlin', _list_paths(lists, 'tuberlin_t30_sake/png_ready_filelist_zero.txt', 'tuberlin_t30_sake/ImageResized_ready_filelist_zero.txt',
                                               'tuberlin_t30_sake/png_ready_filelist_train.txt') +
              [f'ImageResized_ready/{c}/n0_{k}.JPEG' for c in tr for k in range(2)])
    d = load_dataset('tuberlin', tmp_path)
    assert (d.layout, d.split) == ('tuberlin_ready', 't30_sake')
    assert (d.test.n_sketches, d.test.n_photos, d.train.n_sketches, d.train.n_photos) == (2400, 27989, 15400, 440)

# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
def test_errors_name_what_was_found(tmp_path):
    with pytest.raises(ConfigError, match="an existing folder"): load_dataset('sketchy', tmp_path/'nope')
    fake_tree(tmp_path, ['images_all/cat/1.jpg', 'strokes/cat/1.png'])
    with pytest.raises(ConfigError) as e: load_dataset('quickdraw', tmp_path)
    msg = str(e.value)
    assert 'found: images_all/, strokes/; 0 files' in msg
    assert all(f"{n}: {LAYOUTS[n].describe()}" in msg for n in ('quickdraw_final', 'sketches_images', 'flat'))

def test_missing_split_classes_listed(tmp_path):
    _, te, tr = split_classes('quickdraw', 'q30')
    fake_tree(tmp_path, [f'sketches/{c}/1.png' for c in te[2:] + tr] + [f'images/{c}/1.jpg' for c in te[2:] + tr])
    with pytest.raises(ConfigError, match=f"missing 2 of 30 unseen classes: {te[0]} \\(no sketch folder, no photo folder\\), {te[1]} "):
        load_dataset('quickdraw', tmp_path)

def test_corrupt_files_skipped_counted_warned(tmp_path):
    sketchy_tree(tmp_path, 'sketchy_tx', n_test=(3, 1), n_train=(2, 0))
    sk = sorted((tmp_path/'sketch/tx_000000000000/bat').iterdir())
    sk[0].unlink(); sk[0].write_bytes(b'')                                            # zero bytes: set aside at index time
    ph = sorted((tmp_path/'photo/tx_000000000000/table').iterdir())[0]
    data = ph.read_bytes(); ph.unlink(); ph.write_bytes(data[:len(data) // 2])         # truncated: found when read
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always'); d = load_dataset('sketchy', tmp_path)
    assert [str(x.message).count('skipped 1 zero-byte') for x in w] == [1]
    assert d.test.counts()['bat'][0] == len(sk) - 1
    # evaluation: the truncated photo is dropped from its batch and counted
    ds = ImageDataset(d.train.photos, d.train.reader, sbir_transform(8, 'photo'))
    xs, idx = collate_skip([ds[i] for i in range(len(ds))])
    assert len(idx) == len(ds) - 1 and len(ds.bad) == 1
    # training, with 2 workers: triplets holding it are replaced, one warning counts them
    dl = make_train_loader(d.train, SBIRConfig(batch_size=8, n_classes_per_batch=4, workers=2), 8)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always'); batches = [b for e in range(3) for b in dl]
    assert dl.n_bad > 0 and sum('unreadable image' in str(x.message) for x in w) >= 1
    assert {tuple(b['sketch'].shape) for b in batches} == {(8, 3, 8, 8)}

def test_index_cache_follows_changes(tmp_path):
    sketchy_tree(tmp_path, 'flat')
    n0 = load_dataset('sketchy', tmp_path).test.counts()['bat'][0]
    fake_tree(tmp_path, ['sketch/bat/n99_1-1.png'])
    assert load_dataset('sketchy', tmp_path).test.counts()['bat'][0] == n0 + 1
    (tmp_path/'sketch/bat/n99_1-1.png').unlink()
    assert load_dataset('sketchy', tmp_path).test.counts()['bat'][0] == n0

def test_custom_splits_and_describe(tmp_path, capsys):
    sketchy_tree(tmp_path, 'sketchy_filelist')
    d = load_dataset('sketchy', tmp_path, 'custom:hot air balloon,jack_o_lantern')
    assert d.test.classes == ['hot air balloon', 'jack_o_lantern'] and len(d.train.classes) == 123
    assert 'hot-air_balloon' not in d.train.classes
    f = tmp_path/'my_split.txt'; f.write_text('bat 0\ncow 1\n')
    assert load_dataset('sketchy', tmp_path, str(f)).test.classes == ['bat', 'cow']
    assert load_data('sketchy', str(tmp_path), str(f)).test.classes == ['bat', 'cow']
    describe(tmp_path, 'sketchy', 's21')
    out = capsys.readouterr().out
    assert 'layout sketchy_filelist' in out and 'test: 21 classes' in out and 'bat ' in out

# ---------------------------------------------------------------------------------------------
# Samplers on a real tree: workers and processes
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def mini_sketchy(tmp_path):
    sketchy_tree(tmp_path, 'sketchy_tx', n_test=(3, 1), n_train=(4, 1))
    return load_dataset('sketchy', tmp_path)

def _epochs(dl, n=2):
    return [{k: v.clone() for k, v in b.items()} for _ in range(n) for b in dl]

@pytest.mark.parametrize('mode', ['zs', 'fg'])
def test_batches_do_not_depend_on_workers(mini_sketchy, mode):
    cfg = dict(mode=mode, dataset='sketchy', data_root='.', batch_size=12, n_classes_per_batch=4, seed=5)
    b0 = _epochs(make_train_loader(mini_sketchy.train, SBIRConfig(**cfg, workers=0), 8))
    b2 = _epochs(make_train_loader(mini_sketchy.train, SBIRConfig(**cfg, workers=2), 8))
    assert len(b0) == len(b2) > 0
    for x, y in zip(b0, b2):
        assert x.keys() == y.keys() == {'sketch', 'pos', 'neg', 'label', 'neg_label'}
        assert all(torch.equal(x[k], y[k]) for k in x)
    lab = torch.stack([b['label'] for b in b0]).view(len(b0), 4, 3)
    assert (lab == lab[:, :, :1]).all()                                                # P classes x M sketches
    if mode == 'fg': assert all(torch.equal(b['label'], b['neg_label']) for b in b0)
    else: assert all((b['label'] != b['neg_label']).all() for b in b0)

def test_processes_get_disjoint_equal_shares(mini_sketchy):
    cfg = SBIRConfig(mode='fg', dataset='sketchy', data_root='.', batch_size=12, n_classes_per_batch=4, seed=1)
    loaders = [make_train_loader(mini_sketchy.train, cfg, 8, rank=r, world_size=3) for r in range(3)]
    assert len({len(dl) for dl in loaders}) == 1 and len(loaders[0]) > 0
    for e in range(2):
        shares = []
        for dl in loaders:
            dl.set_epoch(e); shares.append(np.concatenate(list(dl.batch_sampler)))
        assert sum(len(s) for s in shares) == len(set(map(tuple, np.concatenate(shares))))   # (index, epoch) keys disjoint
    s = ClassBalancedBatchSampler(mini_sketchy.train.sketch_labels, 4, 3, seed=1)
    assert sum(1 for _ in s) == len(s)

def test_load_data_dispatches_synthetic():
    pytest.importorskip('clip_sbir.data.synthetic')
    d = load_data('synthetic', image_size=16, n_photos=4, n_sketches=2, cache=False)
    assert d.name == 'synthetic' and not set(d.train.classes) & set(d.test.classes)
    for mode in ('zs', 'fg'):                                      # the samplers are dataset-agnostic
        b = next(iter(make_train_loader(d.train, SBIRConfig(mode=mode, batch_size=8, n_classes_per_batch=4), 16)))
        assert b['sketch'].shape == (8, 3, 16, 16) and (b['label'] == b['neg_label']).all() == (mode == 'fg')
