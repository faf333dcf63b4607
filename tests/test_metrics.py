"""Peak memory of the chunked evaluation, measured in a fresh process (a notebook cannot measure its own peak)."""
import json, subprocess, sys

import pytest

CODE = r"""
import json, resource, sys, numpy as np, torch
from clip_sbir.metrics import zs_metrics
n_q, n_g, d, chunk_mb = map(float, sys.argv[1:])
n_q, n_g, d = int(n_q), int(n_g), int(d)
g = torch.Generator().manual_seed(0)
q, gal = torch.randn(n_q, d, generator=g), torch.randn(n_g, d, generator=g)
ql, gl = torch.randint(0, 2, (n_q,), generator=g), torch.randint(0, 2, (n_g,), generator=g)  # 2 classes: big same-class blocks
zs_metrics(q[:10], ql[:10], gal, gl, chunk_mb=chunk_mb)                 # warm-up: imports, thread pools
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024       # MiB (Linux reports KiB)
res = zs_metrics(q, ql, gal, gl, chunk_mb=chunk_mb)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({'before': before, 'peak': peak, 'map': res['mAP@all'], 'n_query': res['n_query']}))
"""

def _run(n_q, n_g=15000, d=32, chunk_mb=32):
    out = subprocess.run([sys.executable, '-c', CODE, str(n_q), str(n_g), str(d), str(chunk_mb)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])

@pytest.mark.slow
def test_peak_memory_is_bounded_by_the_chunk_not_the_score_matrix():
    "6,000 x 15,000 scores would take 343 MiB in float32; the chunked evaluation stays within a few chunks"
    small, big = _run(600, chunk_mb=16), _run(6000, chunk_mb=16)
    assert big['n_query'] == 6000 and 0 < big['map'] < 1
    full_mib = 6000 * 15000 * 4 / 2**20
    growth = big['peak'] - big['before']
    assert growth < 150, (growth, big)                       # 16 MiB chunks: < 150 MiB above the features (40 measured)
    assert growth < full_mib / 4, (growth, full_mib)
    # ten times the queries, about the same peak
    assert big['peak'] - small['peak'] < 75, (small, big)
