"""Benchmark the prompted CLIP encoder (clip_sbir.models.prompts) against plain open_clip, side by side in one run.

1. Inference: `SBIREncoder.encode_photo` (K prompts, own LayerNorms) vs open_clip `encode_image(normalize=True)`,
   same CLIP, same batch, interleaved; ratio of median times (target <= 1.08 for K=3 on ViT-B-32).
2. Training step (forward + backward of a ZS triplet batch: sketches through the sketch branch, positive and
   negative photos through the photo branch, triplet loss): prompts + LayerNorms trainable (the paper) vs the
   same with the attention in-projections also trainable (what the authors' public code does by accident).
   Time ratio (interleaved medians; on the CPU, process CPU time) and memory ratio (CUDA: peak max_memory_allocated
   over a step; CPU, which has no allocator statistics: saved activations + gradients that autograd holds for backward).

    python bench/bench_encoder.py --device cpu --precision fp32
    python bench/bench_encoder.py --device cuda --precision bf16 --train-batch 64
"""
from __future__ import annotations
import argparse, statistics, sys, time

import torch
import torch.nn.functional as F

from clip_sbir.core import autocast, resolve_precision
from clip_sbir.models.clip import load_clip
from clip_sbir.models.prompts import build_encoder


def _sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)

def _autocast(dev, precision):
    "The library's precision rule (`resolve_precision`), so the benchmark measures what training and evaluation run"
    return autocast(dev, resolve_precision(precision, dev))

def _timed(fn, dev):
    "Seconds taken by fn(): CPU time of this process on the CPU (robust to other jobs sharing the cores), wall time on CUDA"
    clock = time.perf_counter if dev.type == 'cuda' else time.process_time
    _sync(dev); t = clock(); fn(); _sync(dev); return clock() - t

def build(args, dev):
    torch.manual_seed(0)
    clip = load_clip(args.model, 'none', device=dev)
    enc = build_encoder(clip, 'zs', 'ours', n_prompts=args.n_prompts)
    return clip, enc

def set_in_proj_trainable(enc, on:bool):
    "The authors' accident: attention in-projections of the image encoder left trainable"
    for r in enc.clip.visual.transformer.resblocks:
        r.attn.in_proj_weight.requires_grad_(on); r.attn.in_proj_bias.requires_grad_(on)

def triplet_forward(enc, batch, args, dev):
    "ZS triplet loss: sketches through the sketch branch, positive and negative photos through the photo branch"
    s, p, n = batch
    with _autocast(dev, args.precision):
        fs, fp, fn = enc.encode_sketch(s), enc.encode_photo(p), enc.encode_photo(n)
        return F.relu(0.3 + (1 - (fs * fp).sum(-1)) - (1 - (fs * fn).sum(-1))).mean()

def train_step(enc, batch, args, dev, opt=None):
    triplet_forward(enc, batch, args, dev).backward()
    if opt is not None: opt.step()
    enc.zero_grad(set_to_none=not args.keep_grads)

def make_batch(args, size, dev, n):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(n, 3, size, size, generator=g).to(dev) for _ in range(3)]

def bench_inference(clip, enc, args, dev):
    x = torch.randn(args.batch, 3, enc.image_size, enc.image_size, generator=torch.Generator().manual_seed(0)).to(dev)
    plain = lambda: clip.encode_image(x, normalize=True)
    prompted = lambda: enc.encode_photo(x)
    with torch.inference_mode(), _autocast(dev, args.precision):
        for _ in range(args.warmup): plain(); prompted()
        tp, tq = [], []
        for i in range(args.iters):   # interleaved, alternating which goes first
            for name in (('plain', 'prompted') if i % 2 == 0 else ('prompted', 'plain')):
                (tp if name == 'plain' else tq).append(_timed(plain if name == 'plain' else prompted, dev))
    return statistics.median(tp), statistics.median(tq)

def bench_train_time(enc, args, dev):
    batch = make_batch(args, enc.image_size, dev, args.train_batch)
    enc.train()
    res = {False: [], True: []}
    for i in range(args.warmup + args.train_iters):
        for on in ((False, True) if i % 2 == 0 else (True, False)):
            set_in_proj_trainable(enc, on)
            t = _timed(lambda: train_step(enc, batch, args, dev), dev)
            if i >= args.warmup: res[on].append(t)
    set_in_proj_trainable(enc, False)
    return statistics.median(res[False]), statistics.median(res[True])

def peak_memory(args, dev, in_proj:bool)->float:
    """MiB a training step needs beyond the model: CUDA: peak allocated over the step; CPU (no allocator statistics):
    the memory autograd holds for backward, i.e. distinct saved activations (parameters excluded) + parameter gradients"""
    clip, enc = build(args, dev); set_in_proj_trainable(enc, in_proj); enc.train()
    batch = make_batch(args, enc.image_size, dev, args.train_batch)
    opt = torch.optim.AdamW([p for p in enc.parameters() if p.requires_grad], lr=1e-5) if args.optimizer else None
    if dev.type == 'cuda':
        train_step(enc, batch, args, dev, opt)                    # warm-up (cuBLAS workspaces, optimizer state)
        torch.cuda.synchronize(); base = torch.cuda.memory_allocated(); torch.cuda.reset_peak_memory_stats()
        train_step(enc, batch, args, dev, opt)
        torch.cuda.synchronize(); return (torch.cuda.max_memory_allocated() - base) / 2**20
    params = {p.untyped_storage().data_ptr() for p in enc.parameters()}
    held = {}
    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in params: held[st.data_ptr()] = st.nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t): loss = triplet_forward(enc, batch, args, dev)
    loss.backward()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in enc.parameters() if p.grad is not None)
    state = sum(v.numel() * v.element_size() for st in (opt.state.values() if opt else ()) for v in st.values() if torch.is_tensor(v))
    return (sum(held.values()) + grads + state) / 2**20

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    ap.add_argument('--precision', default='fp32', choices=['fp32', 'bf16'])
    ap.add_argument('--model', default='ViT-B-32')
    ap.add_argument('--n-prompts', type=int, default=3)
    ap.add_argument('--batch', type=int, default=32, help='images per inference batch')
    ap.add_argument('--train-batch', type=int, default=32, help='triplets per training step (3x images)')
    ap.add_argument('--iters', type=int, default=7, help='timed inference repetitions per variant')
    ap.add_argument('--train-iters', type=int, default=3, help='timed training steps per variant')
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--optimizer', action='store_true', help='include an AdamW step (its state counts in memory)')
    ap.add_argument('--keep-grads', action='store_true', help='zero grads instead of freeing them between steps')
    ap.add_argument('--threads', type=int, default=0, help='torch CPU threads (0 = torch default)')
    ap.add_argument('--skip', default='', help='comma list of parts to skip: inference,train,memory')
    args = ap.parse_args()
    dev = torch.device(args.device)
    if args.threads: torch.set_num_threads(args.threads)
    if dev.type == 'cuda' and not torch.cuda.is_available(): sys.exit('--device cuda: no CUDA device available')
    skip = set(filter(None, args.skip.split(',')))
    print(f"{args.model} K={args.n_prompts} device={args.device} precision={args.precision} torch={torch.__version__} "
          f"threads={torch.get_num_threads()} {torch.cuda.get_device_name(dev) if dev.type == 'cuda' else ''}".rstrip())
    print("times: " + ("wall-clock medians (CUDA synchronised)" if dev.type == 'cuda' else "median CPU time of this process (other jobs on the cores inflate wall time, not this)"))
    clip, enc = build(args, dev)
    if 'inference' not in skip:
        tp, tq = bench_inference(clip, enc, args, dev)
        print(f"inference batch {args.batch}: plain encode_image {tp * 1e3:.1f} ms, prompted {tq * 1e3:.1f} ms, ratio {tq / tp:.3f} "
              f"(token count alone: {(enc.vit.visual.positional_embedding.shape[0] + args.n_prompts) / enc.vit.visual.positional_embedding.shape[0]:.3f})")
    if 'train' not in skip:
        ta, tb = bench_train_time(enc, args, dev)
        print(f"train step ({args.train_batch} triplets, fwd+bwd{' +AdamW' if args.optimizer else ''}): prompts+LN {ta * 1e3:.0f} ms, "
              f"+ in-proj trainable {tb * 1e3:.0f} ms, ratio {tb / ta:.3f}")
    del clip, enc
    if 'memory' not in skip:
        ma, mb = peak_memory(args, dev, False), peak_memory(args, dev, True)
        what = 'peak max_memory_allocated over a step' if dev.type == 'cuda' else 'saved activations + gradients held for backward'
        print(f"train peak memory ({what}): prompts+LN {ma:.0f} MiB, + in-proj trainable {mb:.0f} MiB, ratio {mb / ma:.3f}")

if __name__ == '__main__': main()
