"""The main job end to end, what notebooks cannot do to themselves: papermill runs of nbs/train.ipynb,
every bad parameter, a run killed with SIGKILL and resumed, and two processes (gloo) under torchrun."""
import ast, json, math, os, signal, subprocess, sys, time
from dataclasses import fields
from pathlib import Path

import nbformat, papermill as pm, pytest, torch

from clip_sbir.core import SBIRConfig, config_fields
from clip_sbir.eval import ZS_KEYS, FG_KEYS
from clip_sbir.run import METRICS_KEYS
from conftest import through_config_cell

ROOT = Path(__file__).resolve().parent.parent
NB = ROOT/'nbs'/'train.ipynb'
TINY = dict(epochs=1, max_steps=3, batch_size=16, n_classes_per_batch=4, val_queries=40)  # seconds, not minutes
ENV = {**os.environ, 'MPLBACKEND': 'Agg', 'OMP_NUM_THREADS': '1'}


def test_parameters_cell_is_the_config():
    "One annotated, documented parameter per SBIRConfig field, with the field's default"
    params = pm.inspect_notebook(str(NB))
    assert list(params) == config_fields()
    defaults = {f.name: f.default for f in fields(SBIRConfig)}
    for name, p in params.items():
        assert ast.literal_eval(p['default']) == defaults[name], name
        assert p['inferred_type_name'] in ('str', 'int', 'float', 'bool') and p['help'], name
    tags = [c.metadata.get('tags', []) for c in nbformat.read(NB, as_version=4).cells]
    assert sum('parameters' in t for t in tags) == 1


def _through_config_cell(params:dict)->dict: return through_config_cell(NB, params)


def test_config_cell_accepts_the_defaults_and_the_parameter_files(tmp_path):
    ns = _through_config_cell({})
    assert ns['cfg'] == SBIRConfig()
    import yaml
    for f in sorted((ROOT/'configs').glob('*.yaml')):
        p = {**yaml.safe_load(f.read_text()), 'data_root': str(tmp_path), 'device': 'cpu', 'precision': 'fp32'}
        assert _through_config_cell(p)['cfg'].model == 'ViT-B-32', f


BAD = [  # (parameters, what the message must say)
    (dict(mode='fgg'), "mode='fgg' is not valid: expected one of 'zs' | 'fg'"),
    (dict(dataset='sketchyy'), "dataset='sketchyy' is not valid: expected one of 'synthetic' | 'sketchy' | 'tuberlin' | 'quickdraw'"),
    (dict(method='prompt'), "method='prompt' is not valid: expected one of 'ours' | 'frozen' | 'ft' | 'lin' | 'deep'"),
    (dict(split='s99'), "split='s99' is not valid: expected one of 'default' for dataset='synthetic'"),
    (dict(dataset='sketchy', data_root='{tmp}', split='t30_sake'), "split='t30_sake' is not valid: expected one of 's21' | 's25_sake' | 's25_sempcyc'"),
    (dict(mode='fg', dataset='tuberlin', data_root='{tmp}'), "mode='fg' is not valid: expected 'zs' for dataset='tuberlin': fine-grained pairs exist only in synthetic | sketchy"),
    (dict(dataset='sketchy'), "data_root='' is not valid: expected the folder holding the sketchy dataset"),
    (dict(dataset='quickdraw', data_root='/no/such/folder'), "data_root='/no/such/folder' is not valid: expected an existing folder"),
    (dict(epochs=0), "epochs=0 is not valid: expected a finite number > 0"),
    (dict(batch_size=-16), "batch_size=-16 is not valid: expected a finite number > 0"),
    (dict(n_classes_per_batch=0), "n_classes_per_batch=0 is not valid"),
    (dict(lr_prompt=0.0), "lr_prompt=0.0 is not valid: expected a finite number > 0"),
    (dict(lr_ln=-1e-6), "lr_ln=-1e-06 is not valid: expected a finite number > 0"),
    (dict(val_queries=0), "val_queries=0 is not valid"),
    (dict(precision='bf16', device='cpu'), "precision='bf16' is not valid: expected 'auto' or 'fp32' on a CPU"),
    (dict(lamda_cls=0.0), "parameter='lamda_cls' is not valid: expected a parameter this notebook defines (did you mean 'lambda_cls'?)"),
    (dict(learning_rate=1e-3), "parameter='learning_rate' is not valid: expected a parameter this notebook defines"),
]

@pytest.mark.parametrize('params,message', BAD, ids=[next(iter(p)) + '=' + str(next(iter(p.values()))) for p, _ in BAD])
def test_bad_parameter_is_refused_in_the_config_cell(params, message, tmp_path):
    from clip_sbir.core import ConfigError
    params = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in params.items()}
    with pytest.raises(ConfigError) as e: _through_config_cell(params)
    assert message in str(e.value), str(e.value)


@pytest.mark.parametrize('params,message', [(dict(lamda_cls=0.0), "did you mean 'lambda_cls'?")])   # every other one: in-process above
def test_bad_parameter_stops_papermill_before_any_work(params, message, tmp_path):
    "Through papermill and a real kernel: the run fails in the config cell and nothing after it runs"
    out = tmp_path/'out.ipynb'
    with pytest.raises(pm.PapermillExecutionError) as e:
        pm.execute_notebook(str(NB), str(out), parameters={**params, 'out_dir': str(tmp_path/'run')}, kernel_name='python3',
                            cwd=str(ROOT), progress_bar=False)
    assert 'ConfigError' in e.value.ename and message in e.value.evalue
    cells = [c for c in nbformat.read(out, as_version=4).cells if c.cell_type == 'code']
    failed = [i for i, c in enumerate(cells) if any(o.get('output_type') == 'error' for o in c.get('outputs', []))]
    assert len(failed) == 1 and 'notebook_params(globals())' in cells[failed[0]].source
    assert all(c.get('execution_count') is None for c in cells[failed[0] + 1:])
    assert not (tmp_path/'run').exists()


def _check_metrics(rec:dict, mode:str, cfg:dict):
    assert tuple(rec) == METRICS_KEYS
    keys = ZS_KEYS if mode == 'zs' else FG_KEYS
    for side in ('metrics', 'baseline'):
        assert tuple(rec[side]) == keys
        assert all(0 <= v <= 1 and math.isfinite(v) for v in rec[side].values()), rec[side]
    assert (rec['mode'], rec['dataset'], rec['split'], rec['model'], rec['method']) == (mode, 'synthetic', 'default', 'clip-sbir-tiny', 'ours')
    assert rec['config'] == SBIRConfig.from_params(cfg).to_dict()
    assert rec['n_query'] > 0 and rec['n_gallery'] > 0 and rec['n_train_sketches'] > rec['n_query']
    assert rec['train_seconds'] > 0 and rec['eval_seconds'] > 0 and (len(rec['git_sha']) == 40 or rec['git_sha'] == 'unknown')
    if mode == 'fg': assert rec['metrics']['acc@1'] <= rec['metrics']['acc@5'] <= rec['metrics']['acc@10']


MYLOSSES = '''
import torch.nn.functional as F
from clip_sbir.run import sbir_loss_fn

def anchored(text_feats, cfg, weight=0.5):
    paper = sbir_loss_fn(text_feats, cfg)
    def loss_fn(model, batch, gen):
        out = paper(model, batch, gen)
        s = F.normalize(model.encode_sketch(batch['sketch']).float(), dim=-1)
        t = F.normalize(text_feats.to(s.device).float(), dim=-1)[batch['label']]
        out['anchor'] = (1 - (s * t).sum(-1)).mean()
        out['total'] = out['total'] + weight * out['anchor']
        return out
    return loss_fn
'''

@pytest.mark.slow
@pytest.mark.parametrize('mode', ['zs', 'fg'])
def test_papermill_run_writes_metrics(mode, tmp_path, monkeypatch):
    "fg: the paper's objective; zs: a user's own (nbs/extend.ipynb), named by -p loss and imported from the user's module"
    monkeypatch.setenv('OMP_NUM_THREADS', '1')   # the kernel inherits it: one thread per job shares 2 cores better
    params = dict(mode=mode, out_dir=str(tmp_path/'run'), **TINY)
    if mode == 'zs':
        (tmp_path/'mine').mkdir()
        (tmp_path/'mine'/'mylosses.py').write_text(MYLOSSES)
        monkeypatch.setenv('PYTHONPATH', f"{tmp_path/'mine'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        params['loss'] = 'mylosses:anchored'
    out = tmp_path/'out.ipynb'
    paths = dict(PAPERMILL_INPUT_PATH=str(NB), PAPERMILL_OUTPUT_PATH=str(out)) if mode == 'zs' else {}  # `--inject-paths` adds these
    pm.execute_notebook(str(NB), str(out), parameters={**params, **paths}, kernel_name='python3', cwd=str(ROOT), progress_bar=False)
    rec = json.loads((tmp_path/'run'/'metrics.json').read_text())
    _check_metrics(rec, mode, params)
    log = (tmp_path/'run'/'log.csv').read_text().splitlines()[0].split(',')
    assert rec['objective'] == ('mylosses:anchored' if mode == 'zs' else 'clip_sbir.run:sbir_loss_fn')
    assert ('anchor' in log) == (mode == 'zs')
    assert {'last.pt', 'best.pt', 'log.csv', 'curves.png'} <= {p.name for p in (tmp_path/'run').iterdir()}
    assert len((tmp_path/'run'/'log.csv').read_text().strip().split('\n')) == 1 + TINY['max_steps']


def _cli(out_dir, **extra):
    params = dict(mode='fg', out_dir=str(out_dir), epochs=1, max_steps=8, save_every=4, batch_size=16, n_classes_per_batch=4,
                  val_queries=40, **extra)
    return [sys.executable, '-m', 'clip_sbir.run'] + sum((['-p', k, str(v)] for k, v in params.items()), []), params


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(tmp_path):
    "SIGKILL after the first checkpoint; `resume` then ends exactly where an uninterrupted run ends (CPU)"
    from clip_sbir.train import load_checkpoint, read_log
    a, b = tmp_path/'a', tmp_path/'b'
    cmd, params = _cli(a)
    subprocess.run(cmd, cwd=ROOT, env=ENV, check=True, capture_output=True)
    cmd, _ = _cli(b)
    p = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not (b/'last.pt').exists():
        assert p.poll() is None and time.time() - t0 < 300, "the run ended before writing a checkpoint"
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL); p.wait()
    killed_at = load_checkpoint(b/'last.pt')['step']
    assert p.returncode == -signal.SIGKILL and 0 < killed_at < params['max_steps'] and not (b/'metrics.json').exists()
    cmd, _ = _cli(b, resume=True)
    r = subprocess.run(cmd, cwd=ROOT, env=ENV, check=True, capture_output=True, text=True)
    assert f"resuming from last.pt at step {killed_at}" in r.stdout
    ra, rb = (json.loads((d/'metrics.json').read_text()) for d in (a, b))
    assert ra['metrics'] == rb['metrics'] and ra['baseline'] == rb['baseline']
    ca, cb = load_checkpoint(a/'last.pt'), load_checkpoint(b/'last.pt')
    assert ca['step'] == cb['step'] == params['max_steps'] and ca['history'] == cb['history']
    for k, v in ca['model'].items(): assert torch.equal(v, cb['model'][k]), k
    strip = lambda rows: [{k: v for k, v in r.items() if k != 'seconds'} for r in rows]
    assert strip(read_log(a/'log.csv')) == strip(read_log(b/'log.csv'))


DIST = r'''
import json, sys, torch, torch.distributed as dist
from clip_sbir.core import SBIRConfig
from clip_sbir.data.real import load_data
from clip_sbir.models.clip import load_clip
from clip_sbir.run import init_run, make_encoder, train_encoder, evaluate_encoder
from clip_sbir.dist import DistEnv, gather_objects
from clip_sbir.data.samplers import make_train_loader
out = sys.argv[1]
cfg = SBIRConfig(mode='fg', device='cpu', batch_size=16, n_classes_per_batch=4, max_steps=3, val_queries=40, out_dir=out)
env, device = init_run(cfg)
data = load_data(cfg.dataset, cfg.data_root, cfg.split)
enc = make_encoder(load_clip(cfg.model, cfg.pretrained, device), cfg)
share = next(iter(make_train_loader(data.train, cfg, enc.image_size, env.rank, env.world).balanced))   # this process's part of step 1
shares = gather_objects(share, env)
if env.rank == 1:   # start the processes apart: fit must broadcast rank 0's values, then keep them equal
    with torch.no_grad():
        for p in enc.parameters():
            if p.requires_grad: p.add_(1.0)
st = train_encoder(enc, data, cfg, env, device, progress=False)
flat = torch.cat([v.flatten() for v in enc.trainable_state_dict().values()])
every = [torch.zeros_like(flat) for _ in range(env.world)]; dist.all_gather(every, flat)
res, (qf, gf) = evaluate_encoder(enc, data.test, cfg, env=env, device=device, return_features=True)
if env.rank == 0:
    single, (qs, gs) = evaluate_encoder(enc, data.test, cfg, env=DistEnv(), device=device, return_features=True)
    json.dump({'world': env.world, 'same_params': all(torch.equal(every[0], e) for e in every), 'changed': bool((flat != 0).any()),
               'gathered': res, 'single': single, 'feat_diff': max((qf - qs).abs().max().item(), (gf - gs).abs().max().item()),
               'steps': st['step'], 'n_q': len(qf), 'shares': shares,
               'one_process': next(iter(make_train_loader(data.train, cfg, enc.image_size).balanced))}, open(f'{out}/dist.json', 'w'))
# zs, whose losses are means over triplets: two processes sharing a global batch train as one process given all of it
zcfg = SBIRConfig(mode='zs', device='cpu', batch_size=16, n_classes_per_batch=4, max_steps=3, val_queries=40, log_every=1, out_dir=f'{out}/zs2')
clip = load_clip(zcfg.model, zcfg.pretrained, device)
two = make_encoder(clip, zcfg)
train_encoder(two, data, zcfg, env, device, progress=False)
if env.rank == 0:
    one = make_encoder(clip, zcfg)
    train_encoder(one, data, SBIRConfig(**{**zcfg.to_dict(), 'out_dir': f'{out}/zs1'}), DistEnv(), device, progress=False)
    a, b = two.trainable_state_dict(), one.trainable_state_dict()
    from clip_sbir.train import read_log
    gn = lambda d: [float(r['grad_norm']) for r in read_log(f'{out}/{d}/log.csv')]   # Adam hides a gradient's scale; the log does not
    json.dump({'grad_norms': [gn('zs2'), gn('zs1')], 'max_diff': max((a[k] - b[k]).abs().max().item() for k in a), 'moved': max((b[k] - make_encoder(clip, zcfg).trainable_state_dict()[k]).abs().max().item() for k in b)},
              open(f'{out}/zs.json', 'w'))
# the main job's entry point (`python -m clip_sbir.run` under torchrun): -p batch_size 16 on these 2 processes is the global batch
from clip_sbir.run import main
main(['-p', 'device', 'cpu', '-p', 'out_dir', f'{out}/cli', '-p', 'max_steps', '2', '-p', 'val_queries', '40', '-p', 'batch_size', '16',
      '-p', 'n_classes_per_batch', '4'])
dist.destroy_process_group()
'''

@pytest.mark.slow
def test_two_processes_stay_identical_and_gather_the_evaluation(tmp_path):
    script = tmp_path/'dist_run.py'; script.write_text(DIST)
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', str(script), str(tmp_path)],
                       cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads((tmp_path/'dist.json').read_text())
    assert d['world'] == 2 and d['same_params'] and d['steps'] == 3
    assert [len(s) for s in d['shares']] == [8, 8] and d['shares'][0] + d['shares'][1] == d['one_process']   # batch_size is global
    z = json.loads((tmp_path/'zs.json').read_text())      # averaged gradients: 2 processes x 8 = 1 process x 16, step for step
    assert z['moved'] > 1e-4 and z['max_diff'] < 1e-5 * max(1., z['moved']), z
    two, one = z['grad_norms']
    assert len(two) == len(one) == 3 and all(abs(x - y) <= 1e-4 * y for x, y in zip(two, one)), z   # averaged, not summed
    assert d['gathered'].keys() == d['single'].keys()
    for k, v in d['single'].items(): assert abs(d['gathered'][k] - v) <= 1e-6, (k, d['gathered'][k], v)
    assert d['feat_diff'] < 1e-5 and d['changed']
    rec = json.loads((tmp_path/'cli'/'metrics.json').read_text())          # the main job's entry point on the same 2 processes:
    assert (rec['processes'], rec['batch_per_process'], rec['config']['batch_size']) == (2, 8, 16)   # batch_size is the global batch

def test_a_batch_the_processes_cannot_share_is_refused_before_any_work(tmp_path, monkeypatch):
    "batch_size 15 under a launcher of 2 processes (torchrun's WORLD_SIZE): refused before a process group or the run's folder exists"
    import clip_sbir.run as run
    monkeypatch.setenv('WORLD_SIZE', '2')
    with pytest.raises(Exception, match="batch_size=15 is not valid: expected a global batch that 2 processes share evenly.*e.g. 10 or 20"):
        run.main(['-p', 'batch_size', '15', '-p', 'n_classes_per_batch', '5', '-p', 'out_dir', str(tmp_path/'bad')])
    assert not (tmp_path/'bad').exists() and not torch.distributed.is_initialized()
