"""Packaging for clip_sbir: all settings live in settings.ini (nbdev 2); edit there, not here."""
from configparser import ConfigParser
import setuptools, shlex

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

cfg_keys = 'version description keywords author author_email'.split()
expected = cfg_keys + "lib_name user branch license status min_python audience language".split()
for o in expected: assert o in cfg, "missing expected setting: {}".format(o)
setup_cfg = {o:cfg[o] for o in cfg_keys}

licenses = {
    'apache2': ('Apache Software License 2.0','OSI Approved :: Apache Software License'),
    'mit': ('MIT License', 'OSI Approved :: MIT License'),
}
statuses = [ '1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive' ]
py_versions = '3.10 3.11 3.12 3.13'.split()

requirements = shlex.split(cfg.get('requirements', ''))
if cfg.get('pip_requirements'): requirements += shlex.split(cfg.get('pip_requirements', ''))
min_python = cfg['min_python']
lic = licenses.get(cfg['license'].lower(), (cfg['license'], None))
# extras: [browser] the real-browser widget test, [search] faiss, [dev] the development tools and both of them
extras = {k: (cfg.get(f'{k}_requirements') or '').split() for k in ('dev', 'browser', 'search')}
extras['dev'] += [r for k in ('browser', 'search') for r in extras[k] if r not in extras['dev']]

lib = cfg['lib_name']
packages = setuptools.find_packages(include=[lib, lib + '.*'])
package_dir, package_data = {}, {}
pkg_data = cfg.get('package_data', None)
if pkg_data: package_data[lib] = pkg_data.split() # split as multiple files might be listed
# folders shipped as data subpackages (package_dirs = notebooks:nbs ...): a pip install gets the notebooks and configs
for o in cfg.get('package_dirs', '').split():
    sub, src = o.split(':')
    packages.append(f'{lib}.{sub}'); package_dir[f'{lib}.{sub}'] = src
    package_data[f'{lib}.{sub}'] = ['*.ipynb', '*/*.ipynb', '*.yaml']
setup_cfg['package_data'] = package_data

setuptools.setup(
    name = cfg['lib_name'],
    license = lic[0],
    classifiers = [
        'Development Status :: ' + statuses[int(cfg['status'])],
        'Intended Audience :: ' + cfg['audience'].title(),
        'Natural Language :: ' + cfg['language'].title(),
    ] + ['Programming Language :: Python :: '+o for o in py_versions[py_versions.index(min_python):]] + (['License :: ' + lic[1] ] if lic[1] else []),
    url = cfg['git_url'],
    packages = packages,
    package_dir = package_dir,
    include_package_data = True,
    install_requires = requirements,
    extras_require = extras,
    dependency_links = cfg.get('dep_links','').split(),
    python_requires  = '>=' + cfg['min_python'],
    long_description = open('README.md', encoding='utf-8').read(),
    long_description_content_type = 'text/markdown',
    zip_safe = False,
    entry_points = {
        'console_scripts': cfg.get('console_scripts','').split(),
        'nbdev': [f'{cfg.get("lib_path")}={cfg.get("lib_path")}._modidx:d']
    },
    **setup_cfg)
