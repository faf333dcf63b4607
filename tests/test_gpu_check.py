"""tools/gpu_check.sh in its CPU mode: every step runs at toy size (or is skipped because it needs CUDA, saying so), and
the JSON it writes holds the figures the GPU run reports, so the check works the day a GPU machine is at hand."""
import json, math, subprocess, time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

@pytest.mark.slow
def test_gpu_check_cpu_mode(tmp_path):
    out = tmp_path/'gpu_check.json'
    t = time.monotonic()
    r = subprocess.run(['bash', 'tools/gpu_check.sh', '--cpu', '--out', str(out), '--budget', '150', '--work', str(tmp_path/'work')],
                       cwd=ROOT, capture_output=True, text=True, timeout=240)
    took = time.monotonic() - t
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rec = json.loads(out.read_text())
    steps = rec['steps']
    assert rec['cuda'] is False and list(steps) == ['encoder_bench', 'metrics_bench', 'train_run', 'cuda_notebooks']
    assert all(steps[k]['status'] == 'ok' for k in ('encoder_bench', 'metrics_bench', 'train_run')), steps
    nb = steps['cuda_notebooks']
    flagged = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb') if '#| cuda' in p.read_text(encoding='utf-8'))   # scanned here, independently
    assert flagged and nb['status'] == 'skipped' and 'needs CUDA' in nb['reason'] and all(f in nb['reason'] for f in flagged), (flagged, nb)
    assert 'SKIPPED (needs CUDA' in r.stdout
    tr = steps['train_run']
    assert tr['tree']['layout'] == 'quickdraw_final' and tr['tree']['split'] == 'q30' and tr['steps'] == 2
    assert tr['train_images'] == 3 * tr['steps'] * tr['config']['batch_size']
    assert math.isclose(tr['train_images_per_s'], tr['train_images'] / tr['train_seconds'], rel_tol=0.01)
    s = rec['summary']
    assert s['ok'] and s['peak_gpu_memory_mib'] is None and 'needs CUDA' in s['peak_gpu_memory_why_none']
    assert s['train_images_per_s'] > 0 and s['train_images_per_s_model_only'] > 0
    qd = s['quickdraw_eval']
    assert qd['images'] == 92291 + 54151 and qd['metrics_measured_at_full_size'] is False
    assert math.isclose(qd['total_seconds'], qd['encode_seconds'] + qd['metrics_seconds'], abs_tol=0.15)
    assert steps['metrics_bench']['gallery'] == 54151             # the full QuickDraw gallery, a subsample of the queries
    print(f"gpu_check --cpu took {took:.0f} s (CPU mode is meant to stay well under a minute)")
