"""Benchmark: exact category-level evaluation at QuickDraw-ext scale (92,291 sketches x 54,151 photos, 512-d).

Random features with QuickDraw-ext Q30's exact per-class sizes (read from the split files when they are
found, else the counts below, which were read from them). One run measures, side by side:
  - clip_sbir.metrics.zs_metrics on all queries (mAP@all, mAP@200 hits and recall, P@100, P@200):
    wall time and the process's peak resident memory (ru_maxrss; peak CUDA memory on a GPU);
  - a per-query scikit-learn loop (similarities + average_precision_score per query) on a subsample of
    queries, extrapolated to all queries; and the same loop with a stable argsort per query added
    for the @K metrics;
and prints the speed-up ratios and the largest per-query AP difference to scikit-learn on the subsample.

    nice -n 10 python bench/bench_metrics.py                      # full scale, CPU
    python bench/bench_metrics.py --device cuda                   # full scale, GPU (baseline stays on CPU)
    python bench/bench_metrics.py --subsample 0.05 --baseline 100 # quick run on 5% of the queries
"""
import argparse, os, resource, sys, time
from pathlib import Path

import numpy as np
import torch

# Q30 test set per class (sketches, photos), in label order, from sketch_zero.txt / all_photo_zero.txt
Q30_SKETCHES = [3001] * 27 + [5262, 3001, 3001]
Q30_PHOTOS = [1996, 1576, 1619, 2084, 1735, 1654, 2154, 1851, 1817, 1791, 1759, 1925, 1614, 1839, 1576,
              1304, 1626, 2000, 1961, 1677, 1894, 2043, 1599, 2726, 1315, 2118, 1705, 1709, 1873, 1611]
DEFAULT_SPLITS = Path(__file__).resolve().parents[2]/'shared'/'data'/'splits'/'quickdraw_q30'

def class_sizes(split_dir):
    "Per-class counts from '<path> <label>' list files, or the embedded counts"
    f_s, f_p = Path(split_dir)/'sketch_zero.txt', Path(split_dir)/'all_photo_zero.txt'
    if not (f_s.is_file() and f_p.is_file()): return np.array(Q30_SKETCHES), np.array(Q30_PHOTOS), 'embedded counts'
    lab = lambda f: np.array([int(l.rsplit(None, 1)[1]) for l in f.read_text().splitlines() if l.strip()])
    return np.bincount(lab(f_s)), np.bincount(lab(f_p)), f'split files ({f_s.name}, {f_p.name})'

def peak_rss_mib(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
def rss_mib():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'): return int(line.split()[1]) / 1024
    return float('nan')

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--splits', default=str(DEFAULT_SPLITS), help='folder holding sketch_zero.txt and all_photo_zero.txt')
    ap.add_argument('--device', default='cpu', help='cpu | cuda | cuda:N (where the features live)')
    ap.add_argument('--subsample', type=float, default=1.0, help='fraction of queries per class to evaluate (quick runs)')
    ap.add_argument('--baseline', type=int, default=300, help='queries timed in the per-query scikit-learn loop')
    ap.add_argument('--dim', type=int, default=512)
    ap.add_argument('--chunk-mb', type=float, default=256)
    ap.add_argument('--signal', type=float, default=0.15, help='class-centre weight, so metrics are informative')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    from clip_sbir.metrics import zs_metrics, zs_per_query
    from sklearn.metrics import average_precision_score

    ns, npho, src = class_sizes(a.splits)
    ns = np.maximum(1, np.round(ns * a.subsample).astype(int))
    ql, gl = np.repeat(np.arange(len(ns)), ns), np.repeat(np.arange(len(npho)), npho)
    gen = torch.Generator().manual_seed(a.seed)
    centres = torch.nn.functional.normalize(torch.randn(len(npho), a.dim, generator=gen), dim=1)
    def feats(lab):
        x = torch.randn(len(lab), a.dim, generator=gen)                  # float32, built in place
        for c in range(len(centres)): x[torch.as_tensor(lab == c)] += a.signal * a.dim ** 0.5 * centres[c]
        return x.div_(x.norm(dim=1, keepdim=True))
    q, g = feats(ql), feats(gl)
    print(f"{len(ns)} classes from {src}: {len(q):,} queries x {len(g):,} gallery, {a.dim}-d, device {a.device}, "
          f"torch threads {torch.get_num_threads()}, {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    cuda = a.device.startswith('cuda')
    qd, gd = q.to(a.device), g.to(a.device)
    if cuda: torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    rss0 = rss_mib()

    zs_metrics(qd[:64], ql[:64], gd, gl, chunk_mb=a.chunk_mb)            # warm-up (allocator, thread pools)
    if cuda: torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    res = zs_metrics(qd, ql, gd, gl, chunk_mb=a.chunk_mb)
    if cuda: torch.cuda.synchronize()
    t_ours, c_ours = time.perf_counter() - t0, time.process_time() - c0
    peak = peak_rss_mib()
    print(f"\nclip_sbir.metrics.zs_metrics, all {len(q):,} queries: {t_ours:.1f} s ({t_ours / len(q) * 1e3:.3f} ms/query; CPU time {c_ours:.1f} s)")
    print("  " + ", ".join(f"{k} {v:.4f}" for k, v in res.items() if k.startswith(('mAP', 'P@'))))
    print(f"  process RSS before evaluation {rss0:,.0f} MiB (features {(q.numel() + g.numel()) * 4 / 2**20:,.0f} MiB); "
          f"process peak RSS {peak:,.0f} MiB ({peak / 1024:.2f} GiB)")
    if cuda: print(f"  peak CUDA memory allocated {torch.cuda.max_memory_allocated() / 2**20:,.0f} MiB")

    # per-query scikit-learn loop on an evenly spread subsample, on the CPU
    sub = np.linspace(0, len(q) - 1, min(a.baseline, len(q))).round().astype(int)
    gn = g.numpy()
    t0, c0 = time.perf_counter(), time.process_time(); sk = []
    for i in sub:
        s = gn @ q[i].numpy()
        sk.append(average_precision_score(gl == ql[i], s))
    t_sk, c_sk = (time.perf_counter() - t0) / len(sub), (time.process_time() - c0) / len(sub)
    t0 = time.perf_counter()
    for i in sub:
        s = gn @ q[i].numpy()
        average_precision_score(gl == ql[i], s)
        top = (gl == ql[i])[np.argsort(-s, kind='stable')[:200]]       # for mAP@200 and P@K
    t_sk2 = (time.perf_counter() - t0) / len(sub)
    ours_sub = zs_per_query(q[sub], ql[sub], g, gl)['mAP@all']
    print(f"\nper-query scikit-learn loop, {len(sub)} queries timed: {t_sk * 1e3:.2f} ms/query -> "
          f"{t_sk * len(q):.0f} s extrapolated to {len(q):,} queries (AP@all only; CPU time {c_sk * 1e3:.2f} ms/query -> {c_sk * len(q):.0f} s)")
    print(f"  with a stable argsort per query for the @K metrics: {t_sk2 * 1e3:.2f} ms/query -> {t_sk2 * len(q):.0f} s")
    print(f"  max |AP ours - AP sklearn| on these queries: {np.abs(ours_sub - np.array(sk)).max():.2e}")
    print(f"\nspeed-up of zs_metrics (all metrics) over the loop: {t_sk * len(q) / t_ours:.1f}x vs AP@all-only loop, "
          f"{t_sk2 * len(q) / t_ours:.1f}x vs AP@all+@K loop; in CPU time {c_sk * len(q) / c_ours:.1f}x vs AP@all-only loop")
    print(f"load average at the end {os.getloadavg()[0]:.1f} (other processes share the CPU: wall times include waiting)")
    return 0

if __name__ == '__main__': sys.exit(main())
