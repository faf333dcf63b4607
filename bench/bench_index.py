"""Index a dataset root of QuickDraw-ext's size: first index, cached index, one changed folder, full load.

Builds, in a temporary folder, a QuickDraw-ext tree in the `*_final` layout: the Q30 unseen classes
file for file from the standard lists when they are found (92,291 sketches, 54,151 photos), else with
the same per-class counts, plus the 80 seen classes filled to QuickDraw-ext's size (about 330,000
sketches and 204,000 photos in all). Every file is a hard link to one tiny image, so the tree costs
directory entries only. Then times, side by side in one run:
  walk+stat  os.walk with one stat per file (what any listing must at least do)
  first      clip_sbir's index with an empty cache (scandir, one stat per file, no image opened)
  cached     the same index again (one stat per class folder)
  1 changed  after adding one file to one class folder
  load       load_dataset('quickdraw', root, 'q30') from the cached index (splits built)
  PIL        opening 2,000 images with PIL, extrapolated to the tree (what indexing avoids)
Usage: nice -n 10 python bench/bench_index.py [--keep DIR] [--scale 1.0]
"""
import argparse, os, shutil, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTS = Path(os.environ.get('CLIP_SBIR_SPLIT_LISTS', ROOT.parent/'shared'/'data'/'splits'))/'quickdraw_q30'
N_SKETCHES, N_PHOTOS = 330_000, 204_000          # QuickDraw-ext (nbs/datasets_and_splits.md: about 330,000 sketches and 204,000 photos)

def tree_files(scale:float=1.0)->list:
    from clip_sbir.data.real import split_classes, read_filelist
    _, te, tr = split_classes('quickdraw', 'q30')
    if (LISTS/'sketch_zero.txt').is_file():
        files = [p.replace('sketches/', 'QuickDraw_sketches_final/', 1) for p, _ in read_filelist(LISTS/'sketch_zero.txt')]
        files += [p.replace('images/', 'QuickDraw_images_final/', 1) for p, _ in read_filelist(LISTS/'all_photo_zero.txt')]
        src = 'the Q30 lists, file for file'
    else:
        files = [f'QuickDraw_sketches_final/{c}/{10**15 + 10**5 * i + k}.png' for i, c in enumerate(te) for k in range(3001 + 2261 * (c == 'cake'))]
        files += [f'QuickDraw_images_final/{c}/image_{k:05d}.jpg' for c in te for k in range(1805)]
        src = 'Q30-sized generated names (lists not found)'
    n_te = len(files)
    if scale < 1: files = files[::round(1 / scale)]
    ns = (N_SKETCHES - 92_291) // len(tr); npho = (N_PHOTOS - 54_151) // len(tr)
    files += [f'QuickDraw_sketches_final/{c}/{2 * 10**15 + 10**5 * i + k}.png' for i, c in enumerate(tr) for k in range(int(ns * scale))]
    files += [f'QuickDraw_images_final/{c}/image_{k:05d}.jpg' for c in tr for k in range(int(npho * scale))]
    return files, src, n_te

def timed(f):
    t = time.perf_counter(); out = f(); return time.perf_counter() - t, out

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--keep', help='build the tree here and keep it (default: a temporary folder, removed)')
    ap.add_argument('--scale', type=float, default=1.0, help='fraction of the full size (for a quick try)')
    a = ap.parse_args()
    from clip_sbir.data.real import fake_tree, detect_layout, index_root, load_dataset
    work = Path(a.keep or tempfile.mkdtemp(prefix='bench_index_'))
    os.environ['CLIP_SBIR_CACHE'] = str(work/'cache')
    root = work/'QuickDraw'
    try:
        files, src, n_te = tree_files(a.scale)
        t_build, n = timed(lambda: fake_tree(root, files))
        print(f"tree: {n:,} files ({src}; {n_te:,} of them Q30 test files), built in {t_build:.1f} s with hard links")
        def walk():
            k = 0
            for d, sub, fs in os.walk(root):
                sub[:] = [s for s in sub if not s.startswith('.')]
                for f in fs: k += os.stat(os.path.join(d, f)).st_size > 0
            return k
        base, lay, dirs = detect_layout(root, 'quickdraw')
        t_walk, k = timed(walk)
        t_first, ix = timed(lambda: index_root(base, lay.name, dirs))
        t_cached, ix2 = timed(lambda: index_root(base, lay.name, dirs))
        assert ix2.n_files() == ix.n_files() and ix2.rescanned == 0
        t_load, d = timed(lambda: load_dataset('quickdraw', root, 'q30'))
        t_nocache, _ = timed(lambda: load_dataset('quickdraw', root, 'q30', cache=False))
        fake_tree(root, ['QuickDraw_sketches_final/bat/9999999999999999.png'])
        t_one, ix3 = timed(lambda: index_root(base, lay.name, dirs))
        assert ix3.rescanned == 1 and ix3.n_files() == ix.n_files() + 1
        from PIL import Image
        sample = [base/p for p in (d.test.sketches[::97] + d.test.photos[::61])][:2000]
        def open_all():
            for p in sample:
                with Image.open(p) as im: im.load()
        t_pil, _ = timed(open_all)
        size = (work/'cache').rglob('*.json'); cache_mb = sum(f.stat().st_size for f in size) / 2**20
        print(f"index: {ix.n_files():,} image files in {ix.rescanned} class folders; cache file {cache_mb:.1f} MiB")
        print(f"  walk+stat  {t_walk:7.2f} s   (os.walk + os.stat, {k:,} files)")
        print(f"  first      {t_first:7.2f} s   ({t_first / t_walk:.2f} x walk+stat)")
        print(f"  cached     {t_cached:7.3f} s   (first / cached = {t_first / t_cached:.0f} x)")
        print(f"  1 changed  {t_one:7.3f} s   (1 class folder listed again, {ix3.reused} reused)")
        print(f"  load       {t_load:7.2f} s   (load_dataset q30 from the cached index: test {d.test.n_sketches:,} sketches / {d.test.n_photos:,} photos, "
              f"train {d.train.n_sketches:,} / {d.train.n_photos:,})")
        print(f"  load, no cache {t_nocache:5.2f} s")
        print(f"  PIL open   {t_pil / len(sample) * ix.n_files():7.1f} s   (extrapolated from {len(sample)} files: "
              f"{t_pil / len(sample) * ix.n_files() / t_first:.0f} x first index)")
    finally:
        if not a.keep: shutil.rmtree(work, ignore_errors=True)

if __name__ == '__main__': main()
