"""Packaging checks a notebook cannot do to itself: README's commands, .ci/run, a non-editable install."""
import json, os, subprocess, sys, zipfile
from pathlib import Path

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

def test_settings_pins():
    "nbdev 2 (not 3), its working dependency ranges, and the papermill tag kept by nbdev_clean"
    from configparser import ConfigParser
    cfg = ConfigParser(); cfg.read(ROOT/'settings.ini'); d = cfg['DEFAULT']
    assert d['allowed_cell_metadata_keys'] == 'tags' and d['tst_flags'].split() == ['notest', 'slow', 'cuda']
    dev = d['dev_requirements'].split()
    assert 'nbdev>=2.4.14,<3' in dev and any(r.startswith('fastcore>=1.12.3,<1.13') for r in dev)
    req = d['requirements'].split()
    assert 'open_clip_torch==3.3.0' in req and 'torch==2.14.1' in req and 'torchvision==0.29.1' in req

def test_notebooks_have_no_execution_counts_or_home_paths():
    for nb in sorted((ROOT/'nbs').rglob('*.ipynb')):
        if '.ipynb_checkpoints' in nb.parts: continue
        text = nb.read_text()
        d = json.loads(text)
        assert all(c.get('execution_count') is None for c in d['cells'] if c['cell_type'] == 'code'), nb
        assert '/root/' not in text and '/home/' not in text and '/work/' not in text, f"machine path in {nb}"

def test_non_editable_install(tmp_path):
    "A wheel built from the tree, installed into its own folder, imports with its data files"
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(tmp_path/'dist'), str(ROOT)],
                   check=True, cwd=tmp_path)
    wheel = next((tmp_path/'dist').glob('clip_sbir-*.whl'))
    names = zipfile.ZipFile(wheel).namelist()
    assert 'clip_sbir/assets/clip-sbir-tiny.json' in names, names
    target = tmp_path/'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target', str(target), str(wheel)], check=True)
    code = ("import clip_sbir, clip_sbir.core as c, pathlib; print(clip_sbir.__version__); "
            "print(pathlib.Path(clip_sbir.__file__).parent); assert c.assets_path('clip-sbir-tiny.json').is_file(); "
            "print(c.register_embedded_model())")
    env = {**os.environ, 'PYTHONPATH': str(target)}
    out = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.split('\n')
    from configparser import ConfigParser
    cfg = ConfigParser(); cfg.read(ROOT/'settings.ini')
    assert out[0] == cfg['DEFAULT']['version']
    assert Path(out[1]).resolve() == (target/'clip_sbir').resolve()
    assert out[2] == 'clip-sbir-tiny'
