#!/usr/bin/env python3
"""One prepared GPU check (run it as `bash tools/gpu_check.sh`): on CUDA, in bf16, within --budget seconds (460, so the whole run stays under 8 minutes):

  1. encoder_bench    bench/bench_encoder.py, ViT-B-32: inference and training-step times, peak memory of a step;
  2. metrics_bench    bench/bench_metrics.py: exact category-level evaluation at QuickDraw-ext size
                      (92,291 sketches x 54,151 photos, synthetic 512-d features) through clip_sbir.metrics;
  3. train_run        the main job (clip_sbir.run.run_experiment): ViT-B-32 at 224 px with random weights (nothing is
                      downloaded) on a generated QuickDraw-layout tree: training images per second, peak GPU memory;
  4. cuda_notebooks   the notebooks' `#| cuda` cells: nbdev_test --flags cuda on the notebooks that have them;

then quickdraw_eval: the full QuickDraw-size evaluation time, as encoding its 146,442 images at the rate of step 1
plus the measured metrics time of step 2. The figures are written to --out (JSON) after every step, so a run that is
cut short keeps what it measured. Exit status 1 when a step failed, ran over its time or found no time left.

Without CUDA (or with --cpu) steps 1-3 run at toy size on the CPU (the tiny CLIP, a few steps) and step 4 is skipped,
each saying so: CI runs this mode (tests/test_gpu_check.py), so the check cannot rot between GPU machines.
"""
from __future__ import annotations
import argparse, contextlib, gc, io, json, math, os, re, runpy, signal, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUICKDRAW_TEST = (92291, 54151)   # QuickDraw-ext Q30 test set: sketches (queries), photos (gallery)

class StepTimeout(Exception): pass

class Check:
    "The check's record: steps with status, seconds and figures; written to `out` after every step"
    def __init__(self, out:Path, budget:float, cuda:bool):
        import torch
        self.out, self.budget, self.cuda, self.t0 = out, budget, cuda, time.monotonic()
        self.rec = {'cuda': cuda, 'device': torch.cuda.get_device_name(0) if cuda else 'cpu', 'torch': torch.__version__,
                    'budget_s': budget, 'started': time.strftime('%Y-%m-%dT%H:%M:%S'), 'steps': {}, 'summary': {}}
        self.save()

    def left(self)->float: return self.budget - (time.monotonic() - self.t0)

    def save(self):
        self.rec['elapsed_s'] = round(time.monotonic() - self.t0, 1)
        tmp = self.out.with_name(self.out.name + '.tmp')
        tmp.write_text(json.dumps(self.rec, indent=1, default=str)); os.replace(tmp, self.out)

    def skip(self, name:str, reason:str, status:str='skipped'):
        print(f"\n== {name}: {status.upper().replace('_', ' ')} ({reason})", flush=True)
        self.rec['steps'][name] = {'status': status, 'reason': reason}; self.save()

    def run(self, name:str, fn, cap:float, reserve:float=0):
        "Run `fn() -> figures` within min(cap, time left - reserve) seconds; record ok / failed / timeout"
        limit = min(cap, self.left() - reserve)
        if limit < 5: return self.skip(name, f"the budget of {self.budget:.0f} s is spent", 'not_run')   # counts as a failure
        print(f"\n== {name} (at most {limit:.0f} s)", flush=True)
        t = time.monotonic(); step = {}
        def _alarm(*_): raise StepTimeout(f"over its {limit:.0f} s")
        old = signal.signal(signal.SIGALRM, _alarm); signal.setitimer(signal.ITIMER_REAL, limit)
        try: step = {'status': 'ok', **fn(limit)}
        except StepTimeout as e: step = {'status': 'timeout', 'reason': str(e)}
        except Exception as e: step = {'status': 'failed', 'reason': f"{type(e).__name__}: {e}"}
        finally: signal.setitimer(signal.ITIMER_REAL, 0); signal.signal(signal.SIGALRM, old)
        step['seconds'] = round(time.monotonic() - t, 1)
        if step['status'] != 'ok': print(f"   {name}: {step['status'].upper()}: {step['reason']}", flush=True)
        else: print(f"   {name} ({step['seconds']:.0f} s): " + ', '.join(f"{k}={v}" for k, v in step.items()
                                                                 if k not in ('status', 'seconds', 'output', 'timing')), flush=True)
        self.rec['steps'][name] = step; self.save()
        self._free()
        return step

    def _free(self):
        gc.collect()
        if self.cuda:
            import torch; torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()

class _Tee(io.TextIOBase):
    "Print and keep"
    def __init__(self, out): self.out, self.buf = out, io.StringIO()
    def write(self, s): self.out.write(s); self.out.flush(); return self.buf.write(s)

def run_script(path:Path, argv:list)->str:
    "Run a benchmark script in this process (one torch import for the whole check) and return what it printed"
    tee, old_argv = _Tee(sys.stdout), sys.argv
    sys.argv = [str(path), *argv]
    print('   $ python', ' '.join(sys.argv), flush=True)
    try:
        with contextlib.redirect_stdout(tee): runpy.run_path(str(path), run_name='__main__')
    except SystemExit as e:
        if e.code not in (None, 0): raise RuntimeError(f"{path.name} exited with {e.code!r}") from None
    finally: sys.argv = old_argv
    return tee.buf.getvalue()

def _num(pattern:str, text:str, what:str, cast=float):
    m = re.search(pattern, text)
    if not m: raise RuntimeError(f"no {what} in the output (pattern {pattern!r}): has the benchmark's output changed?")
    return [cast(g.replace(',', '')) for g in m.groups()]

# 1. encoder benchmark
def encoder_bench(cuda:bool):
    def step(limit):
        argv = (['--device', 'cuda', '--precision', 'bf16', '--model', 'ViT-B-32', '--batch', '256', '--train-batch', '64',
                 '--iters', '7', '--train-iters', '3'] if cuda else
                ['--device', 'cpu', '--precision', 'fp32', '--model', 'clip-sbir-tiny', '--batch', '4', '--train-batch', '2',
                 '--iters', '1', '--train-iters', '1', '--warmup', '0'])
        out = run_script(ROOT/'bench/bench_encoder.py', argv)
        batch, plain_ms, prompted_ms = _num(r"inference batch (\d+): plain encode_image ([\d.]+) ms, prompted ([\d.]+) ms", out, 'inference time')
        triplets, train_ms, _ = _num(r"train step \((\d+) triplets.*?prompts\+LN ([\d.]+) ms, \+ in-proj trainable ([\d.]+) ms", out, 'train-step time')
        mem = _num(r"train peak memory \(([^)]*)\): prompts\+LN ([\d.]+) MiB", out, 'peak memory', str)
        return {'model': argv[argv.index('--model') + 1], 'precision': argv[argv.index('--precision') + 1],
                'inference_images_per_s': round(batch / (prompted_ms / 1e3), 1),
                'inference_images_per_s_plain_open_clip': round(batch / (plain_ms / 1e3), 1),
                'train_images_per_s': round(3 * triplets / (train_ms / 1e3), 1),   # a triplet: sketch, positive, negative
                'train_step_peak_memory_mib': float(mem[1]), 'memory_measure': mem[0], 'output': out.splitlines()}
    return step

# 2. metrics benchmark at QuickDraw size
def metrics_bench(cuda:bool):
    def step(limit):
        argv = ['--device', 'cuda', '--baseline', '100'] if cuda else ['--subsample', '0.002', '--baseline', '5']
        out = run_script(ROOT/'bench/bench_metrics.py', argv)
        n_q, secs = _num(r"zs_metrics, all ([\d,]+) queries: ([\d.]+) s", out, 'evaluation time')
        n_g = _num(r"queries x ([\d,]+) gallery", out, 'gallery size')[0]
        fig = {'queries': int(n_q), 'gallery': int(n_g), 'metrics_seconds': secs,
               'full_quickdraw_size': (int(n_q), int(n_g)) == QUICKDRAW_TEST, 'output': out.splitlines()}
        m = re.search(r"peak CUDA memory allocated ([\d,]+) MiB", out)
        if m: fig['peak_gpu_memory_mib'] = float(m.group(1).replace(',', ''))
        return fig
    return step

# 3. the main job on a generated QuickDraw-layout tree
def train_run(cuda:bool, work:Path):
    def step(limit):
        import torch
        from clip_sbir.core import SBIRConfig
        from clip_sbir.data.real import miniature_tree
        from clip_sbir.run import run_experiment
        t = time.monotonic()                                         # a QuickDraw_sketches_final / QuickDraw_images_final tree
        tree = miniature_tree(work/'quickdraw', 'quickdraw', 'q30', 'quickdraw_final', unseen=(20, 20) if cuda else (2, 2),
                              seen=(32, 8) if cuda else (4, 2), size=256 if cuda else 32)
        tree['build_seconds'] = round(time.monotonic() - t, 1)
        p = (dict(model='ViT-B-32', image_size=224, batch_size=128, n_classes_per_batch=16, max_steps=60, device='cuda',
                  precision='bf16', workers=min(12, os.cpu_count() or 1)) if cuda else
             dict(model='clip-sbir-tiny', image_size=0, batch_size=4, n_classes_per_batch=2, max_steps=2, device='cpu',
                  precision='fp32', workers=0))
        cfg = SBIRConfig(mode='zs', dataset='quickdraw', data_root=str(work/'quickdraw'), split='q30', pretrained='none',
                         epochs=100, val_classes='0', log_every=10**6, out_dir=str(work/'train'), **p)   # max_steps ends it
        if cuda: torch.cuda.reset_peak_memory_stats()
        rec = run_experiment(cfg, progress=False)
        images = 3 * cfg.max_steps * cfg.batch_size                                    # a triplet: sketch, positive, negative
        fig = {'config': p, 'tree': tree, 'steps': cfg.max_steps, 'train_images': images, 'train_seconds': rec['train_seconds'],
               'train_images_per_s': round(images / rec['train_seconds'], 1),         # includes the first step's start-up
               'eval_images': rec['n_query'] + rec['n_gallery'], 'eval_seconds': rec['eval_seconds'],
               'eval_images_per_s': round((rec['n_query'] + rec['n_gallery']) / rec['eval_seconds'], 1),
               'metrics': rec['metrics']}
        if cuda: fig['peak_gpu_memory_mib'] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return fig
    return step

# 4. the notebooks' cuda-flagged cells
def cuda_notebooks()->list:
    "The library notebooks that hold `#| cuda` cells"
    return sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb')
                  if any(c['cell_type'] == 'code' and re.match(r'#\|\s*cuda\b', ''.join(c['source']).lstrip())
                         for c in json.loads(p.read_text())['cells']))

def notebooks_step(nbs:list):
    def step(limit):
        file_re = '^(' + '|'.join(re.escape(n) for n in nbs) + ')$'
        cmd = [sys.executable, '-c', 'from nbdev.test import nbdev_test; nbdev_test()', '--flags', 'cuda',
               '--file_re', file_re, '--n_workers', str(min(len(nbs), 8)), '--timing']
        print('   $', ' '.join(cmd[:1] + ['-m nbdev_test'] + cmd[3:]), flush=True)
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try: out, err = p.communicate(timeout=max(1, limit - 10))
        except (subprocess.TimeoutExpired, StepTimeout):
            os.killpg(p.pid, signal.SIGKILL); p.communicate()          # nbdev_test and the workers it started
            raise StepTimeout(f"nbdev_test ran over {limit - 10:.0f} s") from None
        print(out[-4000:], err[-4000:], sep='\n', flush=True)
        if p.returncode: raise RuntimeError(f"nbdev_test failed (exit {p.returncode}): {err.strip().splitlines()[-3:]}")
        return {'notebooks': nbs, 'timing': out.strip().splitlines()[1:]}
    return step

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cpu', action='store_true', help='the CPU mode even where CUDA is available (what CI runs)')
    ap.add_argument('--out', default='gpu_check.json', help='JSON file for the figures')
    ap.add_argument('--budget', type=float, default=460, help='seconds for the steps (start-up and summary stay within 8 minutes)')
    ap.add_argument('--work', default='', help='folder for the generated tree and the run (default: a temporary one)')
    a = ap.parse_args(argv)
    import torch
    cuda = torch.cuda.is_available() and not a.cpu
    no_cuda = '--cpu was given' if a.cpu else 'no CUDA device is visible'
    chk = Check(Path(a.out).resolve(), a.budget, cuda)
    print(f"gpu_check on {chk.rec['device']} (torch {torch.__version__}), budget {a.budget:.0f} s, figures -> {chk.out}"
          + ('' if cuda else f"\nCPU mode ({no_cuda}): toy sizes, and what needs CUDA is skipped"), flush=True)
    nbs = cuda_notebooks()
    with tempfile.TemporaryDirectory(prefix='gpu_check_') as tmp:
        work = Path(a.work or tmp); work.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault('CLIP_SBIR_CACHE', str(work/'cache'))     # the tree's index cache stays in the work folder
        chk.run('encoder_bench', encoder_bench(cuda), cap=90, reserve=240 if cuda else 0)
        chk.run('metrics_bench', metrics_bench(cuda), cap=120, reserve=200 if cuda else 0)
        chk.run('train_run', train_run(cuda, work), cap=150, reserve=60 if cuda else 0)
        if not nbs: chk.skip('cuda_notebooks', "no notebook has `#| cuda` cells")
        elif cuda: chk.run('cuda_notebooks', notebooks_step(nbs), cap=10**6)
        else: chk.skip('cuda_notebooks', f"needs CUDA ({no_cuda}): the `#| cuda` cells of {', '.join(nbs)} run on a GPU")
    s, steps = chk.rec['summary'], chk.rec['steps']
    enc, met, tr = (steps[k] if steps[k]['status'] == 'ok' else {} for k in ('encoder_bench', 'metrics_bench', 'train_run'))
    s['train_images_per_s'] = tr.get('train_images_per_s')
    s['train_images_per_s_model_only'] = enc.get('train_images_per_s')
    s['peak_gpu_memory_mib'] = tr.get('peak_gpu_memory_mib') if cuda else None
    if not cuda: s['peak_gpu_memory_why_none'] = f"needs CUDA ({no_cuda})"
    if enc and met:
        encode = sum(QUICKDRAW_TEST) / enc['inference_images_per_s']
        scale = math.prod(QUICKDRAW_TEST) / (met['queries'] * met['gallery'])    # the metrics' cost grows with queries x gallery
        s['quickdraw_eval'] = {'model': enc['model'], 'precision': enc['precision'], 'images': sum(QUICKDRAW_TEST), 'encode_seconds': round(encode, 1),
                               'metrics_seconds': round(met['metrics_seconds'] * scale, 1), 'metrics_measured_at_full_size': met['full_quickdraw_size'],
                               'total_seconds': round(encode + met['metrics_seconds'] * scale, 1),
                               'how': "encoding at the encoder benchmark's inference rate (no image decoding) + exact metrics "
                                      + ("measured at full size" if met['full_quickdraw_size'] else "measured on a subsample, scaled by queries x gallery")}
    failed = [k for k, v in steps.items() if v['status'] in ('failed', 'timeout', 'not_run')]
    s['ok'] = not failed
    chk.save()
    print(f"\n== summary ({chk.rec['elapsed_s']:.0f} s): " + json.dumps(s, indent=1))
    for k, v in steps.items(): print(f"   {k}: {v['status']}" + (f" ({v['reason']})" if 'reason' in v else ''))
    return 1 if failed else 0

if __name__ == '__main__': sys.exit(main())
