"""The experiment notebooks end to end through papermill, with tiny runs (two optimiser steps each):
ablations, then baselines sharing its runs, then the widget notebook on a trained run's checkpoint.
What they write is checked against the runs' own metrics.json files, recomputed here independently."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import papermill as pm
import pytest
from conftest import private_cache, through_config_cell

ROOT = Path(__file__).resolve().parent.parent
EXP = ROOT/'nbs/experiments'
TINY = {'max_steps': 2, 'val_queries': 20, 'eval_every': 0}   # plumbing, not results: seconds per run


def _pm(nb:str, out:Path, **params):
    return pm.execute_notebook(str(EXP/nb), str(out), parameters=params, kernel_name='python3', cwd=str(ROOT), progress_bar=False)

def _metrics(run_dir)->dict: return json.loads((Path(run_dir)/'metrics.json').read_text())


ABLATIONS = dict(zs_sweeps='components,k', fg_sweeps='grid,fraction', components='no_ln', ks='0,3', grids='2,3', fractions='0.2,1.0')

@pytest.fixture(scope='session')   # session: kept while other modules' tests run between its own (xdist)
def grid(tmp_path_factory):
    "One tiny ablation grid (every sweep, both modes, two seeds), and the baselines over the same runs (read from their folders, not retrained)"
    tmp = tmp_path_factory.mktemp('experiments')
    root, figs = tmp/'runs', tmp/'figs'
    common = dict(seeds='0,1', overrides=TINY, root=str(root), fig_dir=str(figs))
    _pm('ablations.ipynb', tmp/'ablations.ipynb', **ABLATIONS, **common)
    n_runs = len(list(root.iterdir()))
    _pm('baselines.ipynb', tmp/'baselines.ipynb', methods='frozen,lin,ours', qual_methods='frozen,ours', n_queries=2, **common)
    return dict(tmp=tmp, root=root, figs=figs, n_runs=n_runs)


@pytest.mark.slow
def test_ablations_write_figures_table_and_rows(grid):
    figs = grid['figs']
    for f in ('ablations_components.png', 'ablations_sweeps.png', 'ablations.md', 'ablations.csv'):
        assert (figs/f).stat().st_size > 0, f
    df = pd.read_csv(figs/'ablations.csv')
    # zs: full, frozen, w/o LN, K=0, K=3 | fg: n=2, n=3, 20 %, 100 %; two seeds each
    assert len(df) == (5 + 4) * 2
    assert set(df[df['mode'] == 'zs'].sweep) == {'components', 'k'} and set(df[df['mode'] == 'fg'].sweep) == {'grid', 'fraction'}
    # identical configurations are one run: K=3 is the zs full method
    full = df[df.label == 'ours (full)'].run_dir
    assert set(df[df.label == 'K=3'].run_dir) == set(full)
    assert grid['n_runs'] == df.run_dir.nunique() == (4 + 4) * 2
    # every row is its run's metrics.json
    for r in df.itertuples():
        rec = _metrics(r.run_dir)
        assert rec['metrics'][r.key] == pytest.approx(r.value, abs=1e-12) and rec['seed'] == r.seed and rec['mode'] == r.mode
    # the parameters reached the runs
    rec = lambda label, mode='zs', seed=0: _metrics(df[(df.label == label) & (df['mode'] == mode) & (df.seed == seed)].run_dir.iloc[0])
    assert rec('w/o LayerNorm tuning')['config']['tune_ln'] is False and rec('K=0')['config']['n_prompts'] == 0
    assert rec('frozen CLIP')['method'] == 'frozen' and rec('n=3', 'fg')['config']['ps_grid'] == 3
    assert rec('20% of seen classes', 'fg')['n_train_classes'] == 6 and rec('100% of seen classes', 'fg')['n_train_classes'] == 28   # 32 seen, 4 validate
    assert len(rec('20% of seen classes', 'fg')['unused_classes']) == 22 and rec('100% of seen classes', 'fg')['unused_classes'] == []
    assert rec('20% of seen classes', 'fg')['config']['n_classes_per_batch'] == rec('100% of seen classes', 'fg')['config']['n_classes_per_batch'] == 4
    assert all(rec('ours (full)', seed=s)['config']['max_steps'] == 2 for s in (0, 1))
    # the frozen method is its own baseline
    fz = df[df.label == 'frozen CLIP']
    assert np.allclose(fz.value, fz.baseline)


@pytest.mark.slow
def test_ablation_table_is_the_paired_difference(grid):
    "The table's 'w/o LayerNorm tuning' change, recomputed from the runs' metrics.json files"
    rows = [l for l in (grid['figs']/'ablations.md').read_text().splitlines() if '| w/o LayerNorm tuning ' in l and l.startswith('| zs')]
    assert len(rows) == 1
    df = pd.read_csv(grid['figs']/'ablations.csv')
    get = lambda label, s: _metrics(df[(df['mode'] == 'zs') & (df.label == label) & (df.seed == s)].run_dir.iloc[0])['metrics']['mAP@all']
    d = np.array([get('w/o LayerNorm tuning', s) - get('ours (full)', s) for s in (0, 1)])
    vals = np.array([get('w/o LayerNorm tuning', s) for s in (0, 1)])
    cells = [c.strip() for c in rows[0].strip('|').split('|')]
    assert cells[4] == f"{vals.mean():.3f} ± {vals.std(ddof=1):.3f}"
    assert cells[5] == f"{d.mean():+.3f} ± {d.std(ddof=1):.3f}"
    # the fraction sweep is compared with its own 100 % point
    frac = [l for l in (grid['figs']/'ablations.md').read_text().splitlines() if '| 20% of seen classes ' in l]
    assert len(frac) == 1 and '| 100% of seen classes |' in frac[0]


@pytest.mark.slow
def test_baselines_share_runs_and_tabulate_them(grid):
    figs, root = grid['figs'], grid['root']
    for f in ('baselines.png', 'baselines_zs.md', 'baselines_fg.md', 'baselines.csv', 'qualitative_zs.png', 'qualitative_fg.png'):
        assert (figs/f).stat().st_size > 0, f
    b = pd.read_csv(figs/'baselines.csv'); a = pd.read_csv(figs/'ablations.csv')
    # "Ours" is the ablations' full method (zs) and n=2 point (fg), zs "frozen" its frozen run: only B-Lin
    # (2 modes x 2 seeds) and fg frozen (2 seeds) were run now
    assert len(list(root.iterdir())) == grid['n_runs'] + 4 + 2
    ours = b[b.method == 'ours']
    assert set(ours.run_dir) == set(a[a.label.isin(['ours (full)', 'n=2'])].run_dir) and ours.cached.all()
    assert b[(b.method == 'frozen') & (b['mode'] == 'zs')].cached.all() and not b[(b.method == 'frozen') & (b['mode'] == 'fg')].cached.any()
    # the table is the mean and std over seeds of the runs' metrics
    for mode, cols in (('zs', ['mAP@all', 'mAP@200_recall', 'P@100']), ('fg', ['acc@1', 'acc@5', 'acc@10'])):
        lines = (figs/f'baselines_{mode}.md').read_text().splitlines()
        header = [c.strip() for c in lines[0].strip('|').split('|')]
        assert header == ['method', 'seeds'] + cols
        body = {c.strip('| ').split('|')[0].strip(): [x.strip() for x in c.strip('|').split('|')] for c in lines[2:]}
        assert list(body) == ['CLIP, frozen', 'B-Lin', 'Ours']
        for method, name in (('lin', 'B-Lin'), ('ours', 'Ours')):
            vals = {c: np.array([_metrics(d)['metrics'][c] for d in sorted(set(b[(b['mode'] == mode) & (b.method == method)].run_dir))]) for c in cols}
            assert body[name][1] == '2'
            for i, c in enumerate(cols):
                assert body[name][2 + i] == f"{vals[c].mean():.3f} ± {vals[c].std(ddof=1):.3f}", (mode, name, c)


@pytest.mark.slow
def test_widgets_show_a_trained_run_with_its_own_metrics(grid, tmp_path):
    "The widget notebook on a checkpoint (run:DIR), all queries: its metrics equal the run's metrics.json"
    b = pd.read_csv(grid['figs']/'baselines.csv')
    run = b[(b['mode'] == 'fg') & (b.method == 'ours') & (b.seed == 0)].run_dir.iloc[0]
    _pm('widgets.ipynb', tmp_path/'w.ipynb', mode='fg', feature_sets=f'ink8,run:{run}', n_queries=0, out_dir=str(tmp_path/'w'))
    res = json.loads((tmp_path/'w'/'retrievals.json').read_text())
    mine, ref = res['metrics'][f'run:{run}'], _metrics(run)['metrics']
    for k in ('acc@1', 'acc@5', 'acc@10'): assert mine[k] == pytest.approx(ref[k], abs=1e-9), k


BAD = [
    (dict(components='no_cls,no_foo'), "components='no_foo'"),
    (dict(overrides={'lambda_cl': 0}), "did you mean 'lambda_cls'?"),
    (dict(seed=1), "did you mean 'seeds'?"),
]

@pytest.mark.parametrize('params,message', BAD)
def test_bad_parameter_is_refused_in_the_config_cell(params, message, tmp_path):
    "Each bad parameter, through the notebook's cells in this process: refused in the config cell, before any run's folder"
    with pytest.raises(Exception) as e:
        through_config_cell(EXP/'ablations.ipynb', dict(root=str(tmp_path/'runs'), fig_dir=str(tmp_path/'figs'), **params))
    assert message in str(e.value)
    assert not (tmp_path/'runs').exists()

def test_bad_parameter_stops_papermill_before_any_run(tmp_path):
    "Through papermill and a real kernel: a fraction sweep too small for a batch stops the notebook before any run's folder exists"
    params, message = dict(fractions='0.05', zs_sweeps='fraction', modes='zs'), "it leaves 1"   # 5 % of the 28 training classes
    with pytest.raises(pm.PapermillExecutionError) as e:
        _pm('ablations.ipynb', tmp_path/'bad.ipynb', root=str(tmp_path/'runs'), fig_dir=str(tmp_path/'figs'), **params)
    assert message in str(e.value)
    assert not (tmp_path/'runs').exists()


@pytest.mark.slow
def test_baselines_on_a_real_dataset_stand_beside_the_papers_numbers(tmp_path, monkeypatch):
    "A miniature Sketchy tree (every image the same tiny file: plumbing only): the tables gain the paper's columns"
    import sys
    sys.path.insert(0, str(ROOT/'tests'))
    from test_datasets import sketchy_tree
    private_cache(monkeypatch, tmp_path)      # the kernel inherits it
    sketchy_tree(tmp_path/'Sketchy', 'sketchy_tx', n_test=(3, 1), n_train=(2, 1))
    over = {**TINY, 'dataset': 'sketchy', 'data_root': str(tmp_path/'Sketchy'), 'batch_size': 16, 'n_classes_per_batch': 4}
    figs = tmp_path/'figs'
    _pm('baselines.ipynb', tmp_path/'b.ipynb', methods='frozen,deep,ours', qual_methods='frozen,ours', seeds='0', n_queries=1,
        overrides=over, root=str(tmp_path/'runs'), fig_dir=str(figs))
    def table(mode):
        lines = (figs/f'baselines_{mode}.md').read_text().splitlines()
        rows = [[c.strip() for c in l.strip('|').split('|')] for l in [lines[0]] + lines[2:]]
        return {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    zs, fg = table('zs'), table('fg')
    assert list(zs) == list(fg) == ['CLIP, frozen', 'B-Deep', 'Ours']
    assert list(zs['Ours']) == ['method', 'seeds', 'mAP@200_voc', 'mAP@200_voc (paper)', 'mAP@200_recall', 'P@200', 'P@200 (paper)']
    assert (zs['Ours']['mAP@200_voc (paper)'], zs['Ours']['P@200 (paper)'], zs['B-Deep']['P@200 (paper)']) == ('0.723', '0.725', '0.718')
    assert zs['CLIP, frozen']['P@200 (paper)'] == ''                     # the paper has no frozen row
    assert (fg['Ours']['acc@1 (paper)'], fg['Ours']['acc@5 (paper)'], fg['B-Deep']['acc@1 (paper)']) == ('0.287', '0.623', '0.276')
    runs = pd.read_csv(figs/'baselines.csv')
    assert set(runs.dataset) == {'sketchy'} and all(_metrics(d)['split'] == 's21' for d in runs.run_dir)
    assert (figs/'qualitative_fg.png').stat().st_size > 0


def test_val_sweep_takes_the_main_jobs_flags_and_reads_validation_classes_only(tmp_path):
    "tools/val_sweep.py: -f/-p as the main job; a file's val_classes 0 (the final protocol) becomes validation classes"
    import sys
    sys.path.insert(0, str(ROOT/'tools'))
    import val_sweep
    a = val_sweep.parser().parse_args(['-f', str(ROOT/'configs/sketchy_zs.yaml'), '-p', 'data_root', str(tmp_path), '-p', 'epochs', '5'])
    base, rate_epochs, epochs = val_sweep.sweep_params(a)
    assert (base['dataset'], base['val_classes'], base['epochs'], base['data_root']) == ('sketchy', 'auto', 5, str(tmp_path))
    assert rate_epochs is None and epochs == ()                           # a real dataset: its own budget, no epochs sweep
    base, rate_epochs, epochs = val_sweep.sweep_params(val_sweep.parser().parse_args(['-p', 'val_classes', '3']))
    assert (base['val_classes'], rate_epochs, epochs) == (3, 1, val_sweep.EPOCHS)   # the embedded default, as before
    with pytest.raises(Exception, match="lr_prompt='fast' is not valid"):
        val_sweep.sweep_params(val_sweep.parser().parse_args(['-p', 'lr_prompt', 'fast']))
