"""clip_sbir.dist's collectives with two real processes (gloo, the way torchrun starts them: RANK, WORLD_SIZE and a
rendezvous in the environment, then `init_distributed`), each result against what one process computes by hand.
The notebook (nbs/90a_dist.ipynb) can only run the single-process branches."""
import json, os, socket, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

WORKER = r'''
import json, sys
import numpy as np, torch
from clip_sbir.dist import (init_distributed, all_reduce_mean, sync_grads, broadcast_params, gather_objects, gather_rows,
                            shard, gather_sharded)
env, dev = init_distributed('cpu')
r, out = env.rank, {}
out['env'] = [env.rank, env.world, env.is_main, env.enabled, str(dev)]
out['mean'] = all_reduce_mean(torch.tensor([1., 10.]) * (r + 1), env).tolist()              # (1, 10) and (2, 20)
p, q = torch.nn.Parameter(torch.full((2,), float(r + 5))), torch.nn.Parameter(torch.zeros(3))
p.grad = torch.tensor([1., 2.]) * (r + 1)                                                    # q has no gradient: counts as zero
sync_grads([p, q], env)
out['grads'] = [p.grad.tolist(), q.grad.tolist()]
broadcast_params([p], env)
out['broadcast'] = p.data.tolist()
out['objects'] = gather_objects({'rank': r, 'name': 'abc'[: r + 1]}, env)
out['rows'] = gather_rows(torch.arange(3 * (r + 1), dtype=torch.float32).view(-1, 1) + 100 * r, env).flatten().tolist()   # 3 rows, then 6
mine = shard(7, env)
out['shard'] = mine.tolist()
out['sharded'] = gather_sharded(torch.as_tensor(mine, dtype=torch.float32)[:, None] * 2, 7, env).flatten().tolist()
json.dump(out, open(f'{sys.argv[1]}/rank{r}.json', 'w'))
torch.distributed.destroy_process_group()
'''

def _free_port()->int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

@pytest.mark.slow
def test_collectives_with_two_processes(tmp_path):
    port = _free_port()
    env = {**os.environ, 'WORLD_SIZE': '2', 'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': str(port), 'OMP_NUM_THREADS': '1'}
    procs = [subprocess.Popen([sys.executable, '-c', WORKER, str(tmp_path)], cwd=ROOT, env={**env, 'RANK': str(r), 'LOCAL_RANK': str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    a, b = (json.loads((tmp_path/f'rank{r}.json').read_text()) for r in (0, 1))
    assert a['env'] == [0, 2, True, True, 'cpu'] and b['env'] == [1, 2, False, True, 'cpu']
    for o in (a, b):
        assert o['mean'] == [1.5, 15.0]                                    # the mean of (1, 10) and (2, 20)
        assert o['grads'] == [[1.5, 3.0], [0.0, 0.0, 0.0]]                 # averaged, a missing gradient as zero
        assert o['broadcast'] == [5.0, 5.0]                                # rank 0's values everywhere
        assert o['objects'] == [{'rank': 0, 'name': 'a'}, {'rank': 1, 'name': 'ab'}]
        assert o['rows'] == [0., 1., 2., 100., 101., 102., 103., 104., 105.]   # rank order, unequal counts
        assert o['sharded'] == [0., 2., 4., 6., 8., 10., 12.]              # every item, back in its own place
    assert (a['shard'], b['shard']) == ([0, 2, 4, 6], [1, 3, 5])           # disjoint, together every index
