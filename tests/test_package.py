"""Packaging checks a notebook cannot do to itself: README's commands, .ci/run, a non-editable install."""
import json, os, subprocess, sys, zipfile
from pathlib import Path

import pytest
from importlib.metadata import version as metadata_version

ROOT = Path(__file__).resolve().parent.parent

def _readme_command(kind):
    return subprocess.run([sys.executable, 'tools/make_readme.py', '--command', kind], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()

def test_readme_commands_are_what_ci_runs():
    "README shows one install and one test command; .ci/run reads exactly those"
    install, test = _readme_command('install'), _readme_command('test')
    assert install.startswith('pip install') and '.[dev]' in install
    assert test == 'bash tools/test.sh'
    ci = (ROOT/'.ci/run').read_text()
    assert '--command install' in ci and '--command test' in ci and 'python3 -m venv' in ci
    readme = (ROOT/'README.md').read_text()
    assert 'papermill nbs/train.ipynb out.ipynb -p mode fg' in readme and '@inproceedings{sain2023clip' in readme
    user = readme[readme.index('## Install'):readme.index('# install')]   # the user's install, before the contributors'
    assert 'pip install .' in user and 'python -m clip_sbir.run' in user and 'notebooks_path' in user
    assert 'install_browser' not in user.split('## Set up')[0] and 'sudo' not in user.split('## Set up')[0]
    assert 'CI=${CI:-true}' in ci

def test_settings_pins():
    "nbdev 2 (not 3), its working dependency ranges, and the papermill tag kept by nbdev_clean"
    from configparser import ConfigParser
    cfg = ConfigParser(); cfg.read(ROOT/'settings.ini'); d = cfg['DEFAULT']
    assert d['allowed_cell_metadata_keys'] == 'tags' and d['tst_flags'].split() == ['notest', 'slow', 'cuda']
    dev = d['dev_requirements'].split()
    assert 'nbdev>=2.4.14,<3' in dev and any(r.startswith('fastcore>=1.12.3,<1.13') for r in dev)
    req = d['requirements'].split()
    assert 'open_clip_torch>=3.3.0,<4' in req and 'torch>=2.14.1,<3' in req and 'torchvision>=0.29.1,<1' in req   # ranges for users

def test_the_check_is_pinned_exactly():
    "constraints/dev.txt pins every requirement of every extra exactly, and README's contributor install uses it"
    sys.path.insert(0, str(ROOT/'tools'))
    from pin_env import requirements, canonical
    pins = {canonical(l.split('==')[0]): l.split('==')[1] for l in (ROOT/'constraints'/'dev.txt').read_text().splitlines()
            if l and not l.startswith('#')}
    for kind in ('requirements', 'dev_requirements', 'browser_requirements', 'search_requirements'):
        for name, _ in requirements(kind): assert canonical(name) in pins, (kind, name)
    assert '-c constraints/dev.txt' in _readme_command('install')
    from importlib import metadata
    assert metadata.version('torch') == pins['torch'] or os.environ.get('CLIP_SBIR_OUTPUTS') == 'run'   # this check runs on the pins

def test_notebooks_have_no_execution_counts_or_home_paths():
    for nb in sorted((ROOT/'nbs').rglob('*.ipynb')):
        if '.ipynb_checkpoints' in nb.parts: continue
        text = nb.read_text()
        d = json.loads(text)
        assert all(c.get('execution_count') is None for c in d['cells'] if c['cell_type'] == 'code'), nb
        assert '/root/' not in text and '/home/' not in text and '/work/' not in text, f"machine path in {nb}"

@pytest.mark.slow
def test_non_editable_install(tmp_path):
    "A wheel built from the tree, installed into its own folder, imports with its data files"
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(tmp_path/'dist'), str(ROOT)],
                   check=True, cwd=tmp_path)
    wheel = next((tmp_path/'dist').glob('clip_sbir-*.whl'))
    names = zipfile.ZipFile(wheel).namelist()
    assert 'clip_sbir/assets/clip-sbir-tiny.json' in names, names
    shipped = {f'clip_sbir/notebooks/{p.relative_to(ROOT/"nbs")}' for p in (ROOT/'nbs').rglob('*.ipynb')} | \
              {f'clip_sbir/configs/{p.name}' for p in (ROOT/'configs').glob('*.yaml')}
    assert 'clip_sbir/notebooks/train.ipynb' in shipped and shipped <= set(names), sorted(shipped - set(names))
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith('.dist-info/METADATA'))).decode().splitlines()
    reqs = [l.split(': ', 1)[1] for l in meta if l.startswith('Requires-Dist: ')]
    runtime = [r for r in reqs if 'extra ==' not in r]
    extra = lambda e: {r.split(';')[0] for r in reqs if f'extra == "{e}"' in r}
    assert not [r for r in runtime if r.startswith(('accelerate', 'playwright', 'nbdev', 'pytest', 'faiss'))], runtime
    from packaging.requirements import Requirement
    spec = {Requirement(r).name: Requirement(r).specifier for r in runtime}
    for name, other in (('torch', '2.15.0'), ('torchvision', '0.30.0'), ('open_clip_torch', '3.4.0')):   # a user's newer build in place
        assert spec[name].contains(other) and spec[name].contains(metadata_version(name)), (name, spec[name])
    assert not spec['open_clip_torch'].contains('4.0.0')        # the wrapped internals: checked at run time, capped here
    assert any(r.startswith('playwright') for r in extra('browser')) and extra('browser') | extra('search') <= extra('dev')
    target = tmp_path/'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target', str(target), str(wheel)], check=True)
    code = ("import clip_sbir, clip_sbir.core as c, pathlib; print(clip_sbir.__version__); "
            "print(pathlib.Path(clip_sbir.__file__).parent); assert c.assets_path('clip-sbir-tiny.json').is_file(); "
            "print(c.register_embedded_model()); print(c.notebooks_path('train.ipynb')); print(c.configs_path('sketchy_zs.yaml'))")
    env = {**os.environ, 'PYTHONPATH': str(target)}
    out = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.split('\n')
    from configparser import ConfigParser
    cfg = ConfigParser(); cfg.read(ROOT/'settings.ini')
    assert out[0] == cfg['DEFAULT']['version']
    assert Path(out[1]).resolve() == (target/'clip_sbir').resolve()
    assert out[2] == 'clip-sbir-tiny'
    assert Path(out[3]) == target/'clip_sbir/notebooks/train.ipynb' and Path(out[3]).is_file()   # the installed copy, not the clone's
    assert Path(out[4]) == target/'clip_sbir/configs/sketchy_zs.yaml' and Path(out[4]).is_file()
