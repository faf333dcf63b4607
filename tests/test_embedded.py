"""The embedded default across processes and with the shipped weights (what a notebook cannot check on itself)."""
import pytest
import hashlib, json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_WORLD_SHA = """
import hashlib, numpy as np
from clip_sbir.data.synthetic import load_synthetic
d = load_synthetic('custom:key', classes=['key', 'moon', 'house'], n_photos=3, image_size=32, seed={seed}, cache=False)
h = hashlib.sha256()
for sp in (d.train, d.test):
    for a in (sp.reader.images, sp.sketch_reader.images, sp.sketch_pair, sp.sketch_labels, sp.photo_labels): h.update(np.ascontiguousarray(a).tobytes())
print(h.hexdigest())
"""

def _world_sha(seed, hashseed):
    env = {**os.environ, 'PYTHONHASHSEED': str(hashseed)}
    return subprocess.run([sys.executable, '-c', _WORLD_SHA.format(seed=seed)], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()

@pytest.mark.slow
def test_world_same_bytes_in_separate_processes():
    "Same seed, same bytes: two fresh interpreters (different hash seeds) produce identical worlds; another seed does not"
    a, b = _world_sha(0, 1), _world_sha(0, 2)
    assert len(a) == 64 and a == b
    ns = {}
    exec(_WORLD_SHA.format(seed=1).replace('print(h.hexdigest())', 'sha = h.hexdigest()'), ns)   # another seed (here, in this process)
    assert ns['sha'] != a

def test_shipped_weights_match_recorded_hash():
    from clip_sbir.core import assets_path
    from clip_sbir.embedded import WEIGHTS_FILE, file_sha256, recorded_sha256
    p = assets_path(WEIGHTS_FILE)
    assert p.is_file() and p.stat().st_size <= 25_000_000
    assert file_sha256(p) == recorded_sha256()

def test_tiny_clip_evidence_on_unseen_categories():
    "Loose: photos near perfect, sketches well above chance and well below photos, frozen SBIR above chance"
    from clip_sbir.data.synthetic import load_synthetic
    from clip_sbir.embedded import evidence
    from clip_sbir.models.clip import load_clip
    ev = evidence(load_clip('clip-sbir-tiny', 'embedded'), load_synthetic())
    assert ev['photo_acc'] > .85, ev
    assert 2 * ev['chance'] < ev['sketch_acc'] < ev['photo_acc'] - .2, ev
    assert 2 * ev['chance'] < ev['frozen_map'] < .8, ev

def test_world_card_files_agree_and_bad_weights_refused(tmp_path):
    "Each committed world card table is `card_table` of its committed numbers, README's for the shipped weights; a missing weights file is refused before any work"
    from clip_sbir.core import assets_path
    from clip_sbir.embedded import WEIGHTS_FILE, file_sha256
    from clip_sbir.world_card import card_table
    saved = json.loads((ROOT/'docs'/'figures'/'world_card.json').read_text())
    assert saved['sha256'] == file_sha256(assets_path(WEIGHTS_FILE)), "rerun python tools/world_card.py: the shipped weights changed"
    for md in sorted((ROOT/'docs'/'figures').rglob('world_card.md')):   # the shipped card, and trials' cards
        saved = json.loads(md.with_suffix('.json').read_text())
        assert md.read_text().startswith(card_table({k: saved[k] for k in ('seen', 'unseen')}) + '\n'), md
    r = subprocess.run([sys.executable, 'tools/world_card.py', '--pretrained', str(tmp_path/'none.safetensors'), '--out', str(tmp_path/'card')],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and 'none.safetensors' in r.stderr and not (tmp_path/'card').exists(), r.stderr
