#!/usr/bin/env python
"""The paper's path, run end to end on a CPU without its data or weights: each parameter file (`configs/*.yaml`)
through the main job's entry point, on a generated tree of its dataset.

    python tools/dry_run.py                          # every file of configs/, one after the other
    python tools/dry_run.py configs/sketchy_fg.yaml  # one file
    python tools/dry_run.py --keep runs/dry          # keep the trees and the runs there

Each run is `python -m clip_sbir.run -f FILE` (`clip_sbir.run.main`, in this process) with the file as it is, on
`clip_sbir.data.real.miniature_tree` of its dataset and split: every class of the split in the dataset's first layout,
one sketch and one photo per unseen class, two of each per seen class (the loader refuses a class without images).
Only what a CPU cannot afford is overridden (`OVERRIDES`): random weights of the file's model at the file's image size
(`pretrained none`), two optimiser steps of a batch of 2 triplets (2 classes x 1), training on `N_TRAIN_CLASSES` of
the seen classes (the loss needs a text-encoder pass per training class name: TU-Berlin has 220), and the CPU.
Everything else (the model, 224 px, prompts, losses, the file's `workers`, the final
evaluation of frozen CLIP and the trained model on every unseen class, `metrics.json`, checkpoints) is the file's.
A wrong key in a file, a value it refuses, or a layout the loader no longer finds fails the run, naming it.
`tests/test_paper_configs.py` runs every file this way.
"""
import argparse, json, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N_TRAIN_CLASSES = 3
OVERRIDES = dict(pretrained='none', device='cpu', max_steps=2, batch_size=2, n_classes_per_batch=2, log_every=1)

def dry_run(config, work, progress:bool=False)->dict:
    "Run the parameter file `config` end to end under `work` (its tree and its run); returns metrics.json's record and timings"
    import yaml
    from clip_sbir.data.real import miniature_tree, split_classes
    from clip_sbir.run import main as run_main
    config, work = Path(config), Path(work)
    p = yaml.safe_load(config.read_text())
    if not isinstance(p, dict) or 'dataset' not in p:
        raise SystemExit(f"{config}: expected a YAML mapping of run parameters naming its dataset")
    t = time.perf_counter()
    tree = miniature_tree(work/'data', p['dataset'], p.get('split'))
    n_seen = len(split_classes(p['dataset'], tree['split'])[2])
    tree['seconds'] = round(time.perf_counter() - t, 2)
    over = {**OVERRIDES, 'data_root': str(work/'data'), 'out_dir': str(work/'run'), 'train_classes': N_TRAIN_CLASSES / n_seen}
    argv = ['-f', str(config)] + [a for k, v in over.items() for a in ('-p', k, str(v))]
    t = time.perf_counter()
    rec = run_main(argv)
    return {'config': str(config), 'tree': tree, 'argv': argv, 'seconds': round(time.perf_counter() - t, 1), 'record': rec}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('configs', nargs='*', help="parameter files (default: every configs/*.yaml)")
    ap.add_argument('--keep', default='', help="folder to keep the trees and runs in (default: a temporary one, removed)")
    a = ap.parse_args(argv)
    files = [Path(f) for f in a.configs] or sorted((ROOT/'configs').glob('*.yaml'))
    tmp = None if a.keep else tempfile.TemporaryDirectory()
    base = Path(a.keep or tmp.name)
    for f in files:
        r = dry_run(f, base/f.stem)
        rec = r['record']
        print(f"{f.name}: {rec['model']} {rec['config']['image_size']} px, {rec['dataset']} {rec['split']} "
              f"({r['tree']['layout']}, {r['tree']['files']} files), {rec['n_query']} queries x {rec['n_gallery']} photos, "
              f"{rec['config']['max_steps']} steps, workers {rec['config']['workers']}: {r['seconds']} s "
              f"(train {rec['train_seconds']} s, evaluation {rec['eval_seconds']} s)")
        print('   ', json.dumps(rec['metrics']))
    if tmp is not None: tmp.cleanup()

if __name__ == '__main__': main()
