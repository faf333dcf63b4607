"""Benchmark `clip_sbir.search` at 1,000,000 photos: exact query latency beside the memory floor, faiss, indexing.

One run measures, side by side:
  - memory bandwidth: a plain copy of a 512 MiB float32 array (torch's copy, best of 5, on the same
    number of threads as the search it is the floor of), as bytes read + written per second
    (STREAM's convention); the floor of an exact query is the bytes of features it must read
    divided by that bandwidth. For batch 64 the compute floor (the multiply-adds at the speed of a
    cache-resident float32 matrix product, measured here too) is printed beside it;
  - exact search (`clip_sbir.knn.topk_exact`, the library's path) over a synthetic gallery of 1,000,000 x 512
    L2-normalised features stored as float16 (the index default) and as float32: time per query at
    batch 1 (median of 9 queries) and batch 64 (median of 3 batches), and the peak extra resident
    memory of a query (VmRSS sampled every millisecond) beside the gallery's own size;
  - approximate search (faiss IVF, float16 codes, candidates rescored exactly): build time, nprobe tuned
    to recall@10 >= 0.95 on 500 held-out queries, then recall@10 against exact on 500 other held-out
    queries and the latency per query at batch 1 (median of 200);
  - index build time with the embedded tiny CLIP on the CPU (`build_index` on 600 PNG photos written
    from the embedded world, scaled to 10,000 photos).

The gallery is clustered like photo features are (2,000 centres of about 500 photos each; a row is
its centre plus noise of the same norm, cosine to it about 0.71), and the queries have more noise than
the photos (twice the norm, cosine to their centre about 0.45), standing in for sketches. This is an
easy case for an inverted file (a cluster falls in few cells); with 10,000 centres of 100 photos at
noise 1.0 / 1.5, a trial here needed nprobe 512 of 1,000 for recall@10 0.985 (37 ms a query). On
isotropic random vectors no index beats a scan; on real features recall depends on the model:
measure it there (`index --calibrate SKETCH_DIR`).

    nice -n 10 python bench/bench_search.py                     # full scale (about 4 GB of memory, minutes)
    python bench/bench_search.py --n 100000 --photos 100        # quick try
"""
import argparse, json, os, resource, shutil, statistics, tempfile, threading, time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent

def rss_bytes()->int:
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')

def peak_extra_rss(fn):
    "(result of fn(), peak resident memory above the start while fn ran, bytes), sampling every ms"
    base, peak, done = rss_bytes(), [0], threading.Event()
    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.001)
    t = threading.Thread(target=watch)
    t.start()
    try: out = fn()
    finally:
        done.set()
        t.join()
    return out, max(0, max(peak[0], rss_bytes()) - base)

def best_time(fn, repeat:int=5)->float:
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)

def copy_bandwidth(nbytes:int=512 * 2**20)->float:
    "Bytes read + written per second by a plain array copy (best of 5), on as many threads as torch uses"
    src = torch.ones(nbytes // 4)
    dst = torch.empty_like(src)
    return 2 * nbytes / best_time(lambda: dst.copy_(src))

def matmul_flops(d:int=512, b:int=64, c:int=4096)->float:
    "Multiply-add flops per second of a cache-resident float32 (b, d) @ (d, c) product"
    q, g = torch.randn(b, d), torch.randn(c, d)
    return 2 * b * d * c / best_time(lambda: q @ g.T, 20)

def clustered(n:int, d:int, centres:np.ndarray, noise:float, seed:int, dtype=np.float16, chunk:int=100_000)->np.ndarray:
    "n unit rows: a random centre plus Gaussian noise of norm about `noise`, normalised"
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), dtype)
    for a in range(0, n, chunk):
        m = min(chunk, n - a)
        x = centres[rng.integers(0, len(centres), m)] + noise * rng.standard_normal((m, d), dtype=np.float32) / np.sqrt(d)
        out[a:a + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out

def timed_queries(search, queries:torch.Tensor, batch:int, n_runs:int)->list:
    "Seconds per query of `search(q)` on `n_runs` batches of `batch` queries"
    search(queries[:batch])                                         # warm-up: gallery pages, allocator
    out = []
    for r in range(n_runs):
        q = queries[r * batch:(r + 1) * batch]
        t = time.perf_counter()
        search(q)
        out.append((time.perf_counter() - t) / batch)
    return out

def bench_exact(feats, queries, bw, flops, label, threads):
    "Time per query and peak extra memory of `topk_exact` at batch 1 and 64, beside the memory and compute floors"
    from clip_sbir.knn import row_scale, topk_exact
    scale = row_scale(feats)
    search = lambda q: topk_exact(q, feats, 10, scale)
    n, d = feats.shape
    rows = {}
    for batch, runs in ((1, 9), (64, 3)):
        t = statistics.median(timed_queries(search, queries, batch, runs))
        (_, extra) = peak_extra_rss(lambda: search(queries[:batch]))
        floor_mem = feats.nbytes / bw / batch                       # the gallery is read once per batch
        floor_cpu = 2 * n * d / flops                               # per query
        rows[batch] = {'storage': label, 'threads': threads, 'batch': batch, 'ms_per_query': 1e3 * t, 'memory_floor_ms': 1e3 * floor_mem,
                       'compute_floor_ms': 1e3 * floor_cpu, 'gflops': flops / 1e9, 'x_memory_floor': t / floor_mem, 'x_binding_floor': t / max(floor_mem, floor_cpu),
                       'peak_extra_mib': extra / 2**20, 'gallery_mib': feats.nbytes / 2**20}
    return rows

def bench_faiss(feats, tune_q, test_q):
    from clip_sbir.knn import approx_topk, ivf_index, recall_at_k, row_scale, topk_exact, tune_nprobe
    scale = row_scale(feats)
    t = time.perf_counter()
    ix = ivf_index(feats, scale)
    build = time.perf_counter() - t
    tuned = tune_nprobe(ix, feats, scale, k=10, target=0.95, queries=tune_q)
    exact = torch.cat([topk_exact(test_q[a:a + 64], feats, 10, scale)[1] for a in range(0, len(test_q), 64)])
    found = approx_topk(ix, test_q, feats, 10, tuned['nprobe'], scale)[1]
    lat = timed_queries(lambda q: approx_topk(ix, q, feats, 10, tuned['nprobe'], scale), test_q, 1, 200)
    return {'nlist': int(ix.nlist), 'nprobe': tuned['nprobe'], 'recall@10_tuning': tuned['recall@10'], 'recall_curve': tuned['recall_curve'],
            'recall@10_held_out': recall_at_k(found, exact), 'ms_per_query': 1e3 * statistics.median(lat), 'build_s': build}

def bench_build(n_photos:int, work:Path)->dict:
    from clip_sbir.data.real import load_data
    from clip_sbir.search import build_index
    data = load_data('synthetic')
    photos = work/'photos'
    sides = (data.train, data.test)
    for i in range(n_photos):
        sp = sides[i % 2]
        j = (i // 2) % sp.n_photos
        p = photos/f'{i % 40:02d}'/f'{i:06d}.png'
        p.parent.mkdir(parents=True, exist_ok=True)
        sp.photo(j).save(p)
    t = time.perf_counter()
    man = build_index(photos, work/'index', device='cpu', progress=False, approximate=False)
    first = time.perf_counter() - t
    t = time.perf_counter()
    build_index(photos, work/'index', device='cpu', progress=False, approximate=False)
    again = time.perf_counter() - t
    return {'photos': man['n'], 'first_s': first, 's_per_10k': first / man['n'] * 10_000, 'unchanged_again_s': again}

def table(res:dict)->str:
    lines = ["| measurement | value |", "|:--|--:|",
             f"| machine | {res['machine']} |",
             *[f"| memory bandwidth (plain copy, read + write, {th} thread(s)) | {bw:.1f} GB/s |" for th, bw in res['bandwidth_by_threads'].items()],
             f"| float32 matrix product (64 x 512 x 4096, in cache, {res['torch_threads']} threads) | {res['gflops']:.0f} GFLOP/s |"]
    for r in res['exact']:
        lines.append(f"| exact, {r['storage']}, {r['threads']} thread(s), batch {r['batch']}: time per query | {r['ms_per_query']:.1f} ms "
                     f"({r['x_memory_floor']:.2f} x memory floor {r['memory_floor_ms']:.1f} ms"
                     + (f"; compute floor {r['compute_floor_ms']:.1f} ms, {r['x_binding_floor']:.2f} x the binding floor" if r['batch'] > 1 else '') + ") |")
        lines.append(f"| exact, {r['storage']}, {r['threads']} thread(s), batch {r['batch']}: peak extra memory | {r['peak_extra_mib']:.0f} MiB (gallery {r['gallery_mib']:.0f} MiB) |")
    f = res.get('faiss')
    if f:
        lines += [f"| faiss IVF (nlist {f['nlist']}, nprobe {f['nprobe']}): time per query, batch 1 | {f['ms_per_query']:.2f} ms |",
                  f"| faiss recall@10 vs exact, 500 held-out queries | {f['recall@10_held_out']:.3f} (tuning queries: {f['recall@10_tuning']:.3f}) |",
                  f"| faiss index build | {f['build_s']:.0f} s |"]
    b = res.get('build')
    if b: lines += [f"| index build, embedded tiny CLIP, CPU | {b['s_per_10k']:.0f} s per 10,000 photos (measured on {b['photos']}; unchanged folder again: {b['unchanged_again_s']:.2f} s) |"]
    return '\n'.join(lines)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=1_000_000, help='gallery size (default 1,000,000)')
    ap.add_argument('--d', type=int, default=512, help='feature size (default 512)')
    ap.add_argument('--photos', type=int, default=600, help='photos for the index build time (default 600)')
    ap.add_argument('--no-faiss', action='store_true', help='skip the approximate index')
    ap.add_argument('--no-float32', action='store_true', help='skip exact search on float32 storage')
    ap.add_argument('--threads', type=int, nargs='+', default=[1, 2], help='torch threads for exact search, each measured (default 1 2)')
    ap.add_argument('--out', default=str(ROOT/'docs'/'figures'/'search_bench'), help='writes OUT.json and OUT.md')
    a = ap.parse_args()
    torch.manual_seed(0)
    res = {'n': a.n, 'd': a.d, 'torch_threads': torch.get_num_threads(),
           'machine': f"{os.cpu_count()}-core CPU ({torch.get_num_threads()} torch threads)" + (f", load average {os.getloadavg()[0]:.2f} at the start" if hasattr(os, 'getloadavg') else '')}
    res['bandwidth_gb_s'] = copy_bandwidth() / 1e9
    res['gflops'] = matmul_flops(a.d) / 1e9
    res['bandwidth_by_threads'] = {}
    print(f"copy bandwidth {res['bandwidth_gb_s']:.1f} GB/s (read + write); float32 matmul {res['gflops']:.0f} GFLOP/s", flush=True)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((2000, a.d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    t = time.perf_counter()
    feats = clustered(a.n, a.d, centres, 1.0, 1)
    queries = torch.from_numpy(clustered(1200, a.d, centres, 2.0, 2, np.float32))
    print(f"gallery {a.n:,} x {a.d} float16 ({feats.nbytes / 2**20:.0f} MiB) made in {time.perf_counter() - t:.0f} s", flush=True)
    res['exact'] = []
    f32 = None if a.no_float32 else feats.astype(np.float32)
    for th in a.threads:
        torch.set_num_threads(th)
        bw = res['bandwidth_by_threads'][th] = copy_bandwidth() / 1e9
        for arr, label in ((feats, 'float16'), (f32, 'float32')):
            if arr is None: continue
            flops = matmul_flops(a.d) if label == 'float16' else flops
            rows = bench_exact(arr, queries, bw * 1e9, flops, label, th)
            res['exact'] += list(rows.values())
            for r in rows.values(): print(json.dumps(r), flush=True)
    del f32
    torch.set_num_threads(res['torch_threads'])
    if not a.no_faiss:
        res['faiss'] = bench_faiss(feats, queries[:500], queries[500:1000])
        print(json.dumps(res['faiss']), flush=True)
    work = Path(tempfile.mkdtemp(prefix='bench_search_'))
    try: res['build'] = bench_build(a.photos, work)
    finally: shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(res['build']), flush=True)
    res['peak_rss_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    md = table(res)
    print(md)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix('.json').write_text(json.dumps(res, indent=2) + '\n')
    out.with_suffix('.md').write_text(f"Search benchmark: `python bench/bench_search.py` ({a.n:,} x {a.d} features)\n\n" + md + '\n')

if __name__ == '__main__': main()
