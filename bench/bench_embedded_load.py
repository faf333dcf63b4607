"""Benchmark: loading the embedded default (synthetic world + tiny CLIP), first time vs cached.

Runs in one process, side by side: the default world generated with the cache disabled (a first
load), the same world written to a fresh cache and read back (a cached load), and the tiny CLIP
loaded from the shipped safetensors. Prints the seconds and the cold/cached ratio.

    nice -n 10 python bench/bench_embedded_load.py
"""
import os, tempfile, time

def main():
    with tempfile.TemporaryDirectory() as d:
        os.environ['CLIP_SBIR_CACHE'] = d
        t = time.time()
        from clip_sbir.data.synthetic import load_synthetic
        from clip_sbir.models.clip import load_clip
        t_import = time.time() - t
        t = time.time(); load_synthetic(); t_first = time.time() - t          # generates and writes the cache
        t = time.time(); load_synthetic(); t_cached = time.time() - t         # reads it back
        t = time.time(); load_clip('clip-sbir-tiny', 'embedded'); t_model = time.time() - t
    print(f"import {t_import:.2f}s | world first load {t_first:.2f}s | world cached {t_cached:.2f}s "
          f"(x{t_first / t_cached:.0f} faster) | tiny CLIP {t_model:.2f}s")
    print(f"first time total {t_import + t_first + t_model:.1f}s (target < 60s); cached total {t_import + t_cached + t_model:.1f}s (target < 5s)")

if __name__ == '__main__': main()
