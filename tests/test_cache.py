"""The feature cache cannot outlive the code: an edit to how features are computed, made in a copy of the package,
is never answered from a cache written before it; the tests never use the user's cache folder."""
import os, shutil, subprocess, sys
from pathlib import Path

import pytest

from conftest import with_worlds

ROOT = Path(__file__).resolve().parent.parent
ENCODE = r"""
from clip_sbir.core import EMBEDDED_MODEL, SBIRConfig
from clip_sbir.data.synthetic import load_synthetic
from clip_sbir.eval import encode_split
from clip_sbir.models.clip import load_clip
from clip_sbir.run import make_encoder
enc = make_encoder(load_clip(EMBEDDED_MODEL, 'embedded'), SBIRConfig(), 'frozen')
qf, gf = encode_split(enc, load_synthetic().test, queries=range(4), cache=True)
print(repr(float(gf[:16].sum())))
"""

@pytest.mark.slow
def test_an_edit_to_the_encoding_code_recomputes_cached_features(tmp_path):
    pkg = tmp_path/'copy'/'clip_sbir'
    shutil.copytree(ROOT/'clip_sbir', pkg, ignore=shutil.ignore_patterns('__pycache__'))
    cache = with_worlds(tmp_path/'cache')
    env = {**os.environ, 'PYTHONPATH': str(pkg.parent), 'CLIP_SBIR_CACHE': str(cache), 'OMP_NUM_THREADS': '1'}
    run = lambda: subprocess.run([sys.executable, '-c', ENCODE], cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.strip()
    first = run()
    assert len(list((cache/'features').iterdir())) == 2 and run() == first        # photos and sketches cached, then read back
    src = pkg/'models'/'prompts.py'
    text = src.read_text()
    assert text.count('        return vit(x)\n') == 1                              # frozen CLIP's forward pass
    src.write_text(text.replace('        return vit(x)\n', '        return vit(x.flip(-1))\n'))   # the bug a reviewer planted
    assert run() != first                                                          # recomputed, not read from the cache
    assert len(list((cache/'features').iterdir())) == 4

def test_the_tests_cache_is_not_the_users():
    "conftest points CLIP_SBIR_CACHE at a folder of the tests' own before the package is imported"
    from clip_sbir.core import cache_dir
    user = Path(os.environ.get('XDG_CACHE_HOME', Path.home()/'.cache'))/'clip_sbir'
    assert not cache_dir(create=False).resolve().is_relative_to(user.resolve())
