"""Search end to end (issue 17, "done when"): a trained run indexes a folder of PNG and JPEG photos with corrupt
files among them; `query` with the unseen sketches ranks the photos as the library's evaluation does; updates
embed only what changed; an index of another model is refused; the command line does the same."""
import contextlib, io, json, os, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent

def _write_photos(split, root, idx, fmt=None):
    "Photos `idx` of `split` under root/<class>/, PNG and JPEG alternately unless `fmt`"
    out = []
    for i in idx:
        ext = fmt or ('png' if i % 2 == 0 else 'jpg')
        p = Path(root)/split.classes[split.photo_labels[i]]/f'photo_{i:04d}.{ext}'
        p.parent.mkdir(parents=True, exist_ok=True)
        if ext == 'jpg': split.photo(i).save(p, quality=90)
        else: split.photo(i).save(p)
        out.append(p.relative_to(root).as_posix())
    return out

@pytest.fixture(scope='session')   # session: kept while other modules' tests run between its own (xdist)
def world(tmp_path_factory):
    "A trained run (3 steps of the main job), the unseen photos as files with 3 corrupt ones, the unseen sketches as PNG"
    from clip_sbir.core import SBIRConfig
    from clip_sbir.data.real import load_data
    from clip_sbir.run import run_experiment
    tmp = tmp_path_factory.mktemp('search')
    run_experiment(SBIRConfig(device='cpu', epochs=1, max_steps=3, batch_size=16, n_classes_per_batch=4, val_queries=40,
                              eval_every=0, out_dir=str(tmp/'run')), progress=False)
    data = load_data('synthetic')
    photos = tmp/'photos'
    files = _write_photos(data.test, photos, range(data.test.n_photos))
    (photos/'broken').mkdir()
    (photos/'broken'/'noise.jpg').write_bytes(np.random.default_rng(0).bytes(500))
    (photos/'broken'/'empty.png').write_bytes(b'')
    (photos/'broken'/'truncated.png').write_bytes((photos/files[0]).read_bytes()[:80])
    (tmp/'sketches').mkdir()
    sketches = []
    for i in range(data.test.n_sketches):
        sketches.append(str(tmp/'sketches'/f'sketch_{i:04d}.png'))
        data.test.sketch(i).save(sketches[-1])
    return dict(tmp=tmp, run=tmp/'run', photos=photos, files=files, sketches=sketches, data=data)

def _evaluation_ranking(world, paths, k=10):
    "The library's evaluation on the same files: `encode_split` of the run's encoder, then `retrieve`"
    from clip_sbir.data.core import FileReader, SBIRSplit
    from clip_sbir.retrieval import retrieve, similarity
    from clip_sbir.eval import encode_split
    from clip_sbir.run import load_trained
    test = world['data'].test
    enc, cfg = load_trained(world['run'])
    labels = [test.classes.index(p.split('/')[0]) for p in paths]
    split = SBIRSplit(test.classes, world['sketches'], test.sketch_labels, list(paths), labels,
                      reader=FileReader(world['photos']), sketch_reader=FileReader())
    qf, gf = encode_split(enc, split, batch_size=max(cfg.batch_size, 64), precision=cfg.precision)
    return (*retrieve(qf, gf, k), similarity(qf, gf).numpy())       # (n_sketches, k) scores and indices; all (n_sketches, n_photos) scores

def test_index_then_query_ranks_as_the_evaluation(world):
    from clip_sbir.search import SearchIndex, build_index, query
    res = {}
    for dtype in ('float32', 'float16'):
        man = build_index(world['photos'], world['tmp']/f'index_{dtype}', model=f"run:{world['run']}", dtype=dtype, device='cpu', progress=False)
        assert (man['n'], man['n_unreadable'], man['model']['branch'], man['model']['method']) == (384, 3, 'photo', 'ours')
        assert [u[0] for u in man['unreadable']] == ['broken/empty.png', 'broken/noise.jpg', 'broken/truncated.png']
        ix = SearchIndex(world['tmp']/f'index_{dtype}')
        assert ix.paths == sorted(world['files'])
        res[dtype] = (ix, query(ix, world['sketches'], k=10))        # the run's sketch branch, loaded from the manifest
    rs, ri, sims = _evaluation_ranking(world, res['float32'][0].paths)
    ix, hits = res['float32']
    assert len(hits) == len(world['sketches']) == 1152
    assert [h.paths for h in hits] == [[ix.paths[i] for i in row] for row in ri]      # same top-10, same order, every sketch
    np.testing.assert_allclose([h.scores for h in hits], rs, atol=1e-4)
    # float16 storage (the default): scores within 1e-4 of the evaluation's; photos whose scores differ by less than
    # the rounding may change places, so the check is that the evaluation's own score of the photo at each rank
    # equals its score at that rank (to 1e-4)
    ix16, hits16 = res['float16']
    np.testing.assert_allclose([h.scores for h in hits16], rs, atol=1e-4)
    col = {p: i for i, p in enumerate(ix.paths)}
    np.testing.assert_allclose([[sims[r, col[p]] for p in h.paths] for r, h in enumerate(hits16)], rs, atol=1e-4)
    swapped = sum(h.paths != g.paths for h, g in zip(hits16, hits))
    print(f"float16 storage: {swapped} of {len(hits16)} sketches have near-tied photos in another order than float32")

def test_update_embeds_only_what_changed_and_refuses_another_model(world, monkeypatch):
    import clip_sbir.search as search
    from clip_sbir.search import IndexMismatchError, build_index, query, read_table
    photos, out = world['tmp']/'photos_upd', world['tmp']/'index_upd'
    shutil.copytree(world['photos'], photos)
    seen = []
    real = search.extract_features
    def counting(encode_fn, refs, *a, **kw):
        seen.extend(refs)
        return real(encode_fn, refs, *a, **kw)
    monkeypatch.setattr(search, 'extract_features', counting)
    man = build_index(photos, out, model=f"run:{world['run']}", device='cpu', progress=False)
    assert len(seen) == 387 and man['n_unreadable'] == 3             # every file once, corrupt ones counted
    gone = sorted(world['files'])[::70][:5]
    for p in gone: (photos/p).unlink()
    added = ['added/' + p for p in _write_photos(world['data'].train, photos/'added', range(10), fmt='png')]
    edited = sorted(world['files'])[1]                               # a photo replaced in place: new content, same name
    world['data'].train.photo(30).save(photos/edited)
    seen.clear()
    man = build_index(photos, out, model=f"run:{world['run']}", device='cpu', progress=False)
    broken = [f'broken/{n}' for n in ('empty.png', 'noise.jpg', 'truncated.png')]   # unreadable: tried again at every update
    assert sorted(seen) == sorted(added + [edited] + broken)         # only these reach the encoder
    assert (man['last_update']['embedded'], man['last_update']['dropped'], man['n']) == (11 + 3, 5 + 1, 384 - 5 + 10)   # the edited photo's old row too
    assert not set(gone) & {r[0] for r in read_table(out/man['table'])}
    with pytest.raises(IndexMismatchError) as e:
        build_index(photos, out, device='cpu', progress=False)      # frozen tiny CLIP: another model
    from clip_sbir.eval import model_fingerprint
    from clip_sbir.search import load_search_model
    frozen = model_fingerprint(load_search_model()[0])
    assert man['model']['fingerprint'] in str(e.value) and frozen in str(e.value)
    with pytest.raises(IndexMismatchError): query(out, world['sketches'][:1], encoder=load_search_model()[0])

@pytest.mark.slow
def test_command_line(world):
    """Two `index --approximate yes` started at once on one folder (one waits for the other's lock), then `query` exact and
    approximate as subprocesses; the index opens, updates, and an index opened before two updates still answers; a bad path
    is named before any work"""
    from clip_sbir.search import SearchIndex, build_index, query
    env = {**os.environ, 'PYTHONPATH': str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', '')}
    cli = [sys.executable, '-m', 'clip_sbir.search']
    small = world['tmp']/'photos_small'
    for p in sorted(world['files'])[:40]:
        (small/p).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(world['photos']/p, small/p)
    out = world['tmp']/'index_cli'
    cmd = cli + ['index', str(small), '--out', str(out), '--run', str(world['run']), '--device', 'cpu', '--quiet', '--approximate', 'yes']
    procs = [subprocess.Popen(cmd, cwd=world['tmp'], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    res = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], res
    first, second = sorted(o for o, _ in res)[::-1]                  # one embedded the 40 photos; the other, after it, found them indexed
    assert first.startswith(f"40 photos indexed in {out} (40 embedded") and second.startswith(f"40 photos indexed in {out} (0 embedded"), res
    man = json.loads((out/'manifest.json').read_text())
    assert {p.name for p in out.iterdir()} - {'.lock'} == {'manifest.json', man['features'], man['table'], man['approximate']['file'], *man['previous']}
    opened = SearchIndex(out)
    r = subprocess.run(cli + ['query', str(out), *world['sketches'][:2], '-k', '5', '--json', '--approximate'], cwd=world['tmp'], env=env,
                       capture_output=True, text=True)                 # (exact queries from the command line: nbs/11b_search_cli.ipynb)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [h.to_dict() for h in query(out, world['sketches'][:2], k=5, approximate=True)]
    before = [h.to_dict() for a in (False, True) for h in query(opened, world['sketches'][:2], k=5, approximate=a)]
    for _ in range(2): build_index(small, out, model=f"run:{world['run']}", device='cpu', progress=False)
    assert not (out/man['features']).exists()                       # the files `opened` read are gone
    assert [h.to_dict() for a in (False, True) for h in query(opened, world['sketches'][:2], k=5, approximate=a)] == before
    from clip_sbir.search_cli import main                          # a bad path: named before any work, exit status 2 (argparse's)
    with pytest.raises(SystemExit) as e, contextlib.redirect_stderr(io.StringIO()) as err: main(['index', str(world['tmp']/'no_such_dir'), '--out', str(out)])
    assert e.value.code == 2 and "PHOTO_DIR" in err.getvalue() and "no_such_dir" in err.getvalue() and "expected a folder of photos" in err.getvalue()

@pytest.mark.slow
def test_two_processes_index_as_one(world):
    "torchrun with 2 CPU processes (gloo): each embeds its share of the files, the first writes: the index of one process"
    from clip_sbir.search import SearchIndex, build_index, read_manifest, read_table
    folder = world['tmp']/'photos_two'
    for p in sorted(world['files'])[:25] + ['broken/noise.jpg']:
        (folder/p).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(world['photos']/p, folder/p)
    env = {**os.environ, 'PYTHONPATH': str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', '')}
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '-m', '--', 'clip_sbir.search', 'index',
                        str(folder), '--out', str(world['tmp']/'index_two'), '--run', str(world['run']), '--device', 'cpu', '--quiet'],
                       cwd=world['tmp'], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    two = read_manifest(world['tmp']/'index_two')
    assert (two['last_update']['processes'], two['n'], two['n_unreadable'], two['last_update']['embedded']) == (2, 25, 1, 26)
    one = build_index(folder, world['tmp']/'index_one', model=f"run:{world['run']}", device='cpu', progress=False)
    assert one['model']['fingerprint'] == two['model']['fingerprint']
    assert [(r[0], r[-1]) for r in read_table(world['tmp']/'index_one'/one['table'])] == [(r[0], r[-1]) for r in read_table(world['tmp']/'index_two'/two['table'])]
    np.testing.assert_allclose(SearchIndex(world['tmp']/'index_one').features.astype(np.float32),
                               SearchIndex(world['tmp']/'index_two').features.astype(np.float32), atol=1e-3)
