#!/usr/bin/env python3
"""Build the documentation site from the notebooks: every notebook a page with its committed outputs and
figures, the API reference from the docments, the method / datasets / metrics pages, and full-text search.

    python tools/make_docs.py                  # site in _docs/ (open _docs/index.html)
    python tools/make_docs.py --out /tmp/site  # elsewhere; --stage sets where the processed sources go

Why not `nbdev_docs`: it renders with Quarto, and Quarto cannot be installed from the package index here
(PyPI's `quarto-cli` is a source package whose build downloads the Quarto binary from GitHub; Debian has
no Quarto package). So the site is built in two steps that keep nbdev's own conventions:

1. **Stage** (`_proc/`, nbdev's folder for it): each notebook nbdev would document (names not starting
   with `_` or `.`, folders without `.nodoc`) goes through nbdev's documentation processors, the ones
   `nbdev_docs` runs before Quarto: front matter from the `# title` / `> summary` cell, a `show_doc`
   entry after every exported symbol, `#| hide` and `#| export` cells dropped, backticked names linked.
   The `show_doc` entries are rendered from the installed package (`nbdev.showdoc.show_doc`), so no
   notebook cell is executed: the library notebooks carry their outputs (`tools/nb_outputs.py`), and
   `show_table(...)` cells of the others (index, experiments) are filled from their files, as in README.
   Page names follow nbdev's (`02_losses.ipynb` -> `losses.html`, API anchors `losses.html#triplet_loss`).
2. **Render** with Sphinx and myst-nb (maintained, on the package index), notebooks as committed
   (`nb_execution_mode = "off"`), the furo theme when installed, Sphinx's own search index.
"""
import argparse, importlib, importlib.util, json, os, re, shutil, subprocess, sys, time, warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS, FIGS = ROOT/'nbs', ROOT/'docs'/'figures'
SITE_URL = 'https://clip-sbir.github.io/clip_sbir/'
RESERVED = {'search', 'genindex', 'py-modindex'}           # page names Sphinx keeps for itself      # settings.ini doc_host + doc_baseurl: nbdev's doc links
_DIRECTIVE = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
_SHOW_TABLE = re.compile(r"""^show_table\(\s*['"]([^'"]+)['"]\s*\)\s*$""")
_NB_LINK = re.compile(r'\]\((?!https?:|#|/)([^)#\s]+?)\.(ipynb|md)(#[^)\s]*)?\)')

def doc_notebooks(nbs:Path=NBS)->list:
    "The notebooks nbdev documents, in reading order: top level first, then each subfolder"
    out = []
    for p in sorted(nbs.rglob('*.ipynb'), key=lambda p: (len(p.relative_to(nbs).parts), str(p))):
        rel = p.relative_to(nbs)
        if any(s.startswith(('_', '.')) for s in rel.parts): continue
        if any((nbs/Path(*rel.parts[:i])/'.nodoc').exists() for i in range(len(rel.parts))): continue
        out.append(p)
    return out

def page_name(nb:Path, nbs:Path=NBS)->str:
    "nbdev's page name: the number prefix dropped, sub-folders kept (`02_losses` -> `losses`)"
    rel = nb.relative_to(nbs)
    return str(rel.parent/re.sub(r'^\d+[a-z]?_', '', rel.stem)) if rel.parent != Path('.') else re.sub(r'^\d+[a-z]?_', '', rel.stem)

# The notebooks' reading order, by number (index: "Read the method"): the method first, then what looks at and
# uses its results, then the infrastructure it runs on as an appendix. An unnumbered notebook (`train`, the
# main job's papermill notebook) ends the method.
SERIES = (('The method, in reading order', 7), ('Analyses and applications', 90), ('Infrastructure (appendix)', None))

def series(stem:str)->str:
    "The caption of the reading series a top-level notebook's number puts it in (`02_losses` -> the method)"
    m = re.match(r'(\d+)[a-z]?_', stem)
    if m is None: return SERIES[0][0]
    return next(c for c, below in SERIES if below is None or int(m.group(1)) < below)

def _exports(nb:Path)->bool:
    "Does the notebook have a `#| default_exp`?"
    return '#| default_exp' in nb.read_text(encoding='utf-8').replace('#|default_exp', '#| default_exp')

def _directives(src:str)->tuple:
    "({directive: value}, source without its `#|` lines)"
    d, keep = {}, []
    for l in src.splitlines():
        m = _DIRECTIVE.match(l)
        if m: d[m.group(1).lower()] = m.group(2).lower()
        else: keep.append(l)
    return d, '\n'.join(keep).strip('\n')

def _src(c)->str: return ''.join(c['source']) if isinstance(c['source'], list) else c['source']

def _md_cell(text:str)->dict: return {'cell_type': 'markdown', 'metadata': {}, 'source': text}

def _show_doc_md(expr:str, ns:dict)->str:
    "nbdev's show_doc entry of `expr` (evaluated in the module's namespace) as Markdown for MyST"
    from nbdev.showdoc import show_doc
    obj = eval(expr, ns)
    md = show_doc(obj)._repr_markdown_()
    md = re.sub(r'^\s*---\s*\n', '', md)                                   # leading rule: a section cannot open with one
    md = re.sub(r'(\]\([^)]*\))\{[^}]*\}', r'\1', md)                     # Quarto link attributes
    head = re.search(r'^#+\s+(.+?)\s*$', md, re.M)
    anchor = expr.strip().lower()                                          # nbdev's anchor: the lower-case name
    if head is None or _slug(head.group(1)) == anchor: return md          # MyST gives the heading that id already
    return f'<a id="{anchor}"></a>\n\n' + md

def _slug(title:str)->str:
    "MyST's (GitHub's) heading anchor"
    return re.sub(r'[^\w\- ]', '', title.strip().lower()).replace(' ', '-')

class _Links:
    "Rewrite links for the staged tree: notebooks to page names, figures to the copied folder"
    def __init__(self, pages:dict, depth:int): self.pages, self.up = pages, '../' * depth
    def __call__(self, text:str)->str:
        text = re.sub(r'\]\((?:\.\./)+docs/figures/', f']({self.up}figures/', text)
        def nb(m):
            target, ext, frag = m.group(1), m.group(2), m.group(3) or ''
            key = target.lstrip('./')
            if ext == 'ipynb' and key in self.pages: return f']({self.up}{self.pages[key]}.ipynb{frag})'
            return m.group(0)
        return _NB_LINK.sub(nb, text)

def _doc_links(text:str, anchors:dict, depth:int, renamed:dict={})->str:
    "nbdev's absolute doc links (`SITE_URL/losses.html#triplet_loss`) to staged pages; unknown anchors dropped"
    def doc(m):
        page, frag = renamed.get(m.group(1), m.group(1)), m.group(2) or ''
        if page not in anchors: return m.group(0)
        if frag[1:] not in anchors[page]: frag = ''
        return f"]({'../' * depth}{page}.ipynb{frag})"
    return re.sub(re.escape(f']({SITE_URL}') + r'([\w./-]+?)\.html(#[^)\s]*)?\)', doc, text)

def stage_notebook(nb_path:Path, dest:Path, pages:dict, nbs:Path=NBS)->set:
    "Process one notebook for the site (nbdev's doc processors, show_doc entries, directives as myst-nb tags); returns its API anchors"
    from execnb.nbio import read_nb
    from nbdev.processors import FilterDefaults, exec_show_docs
    class Procs(FilterDefaults):
        def base_procs(self): return [p for p in super().base_procs() if p is not exec_show_docs]
    nb = read_nb(nb_path)
    mod = next((_directives(_src(c))[0].get('default_exp') for c in nb.cells if c.cell_type == 'code'
                and 'default_exp' in _directives(_src(c))[0]), None)
    cwd = os.getcwd(); os.chdir(nb_path.parent)
    try: Procs()(nb)
    finally: os.chdir(cwd)
    ns = vars(importlib.import_module(f'clip_sbir.{mod}')) if mod else {}
    rel = Path(page_name(nb_path, nbs))
    links = _Links(pages, len(rel.parts) - 1)
    cells, anchors = [], set()
    for c in nb.cells:
        c = dict(c); src = _src(c)
        if c['cell_type'] == 'raw' and src.lstrip().startswith('---'):        # nbdev's front matter -> title + summary
            import yaml
            fm = yaml.safe_load(src.strip().strip('-')) or {}
            head = f"# {fm.get('title', rel.name)}" + (f"\n\n> {fm['description']}" if fm.get('description') else '')
            cells.append(_md_cell(head)); continue
        if c['cell_type'] == 'markdown':
            if src.strip().startswith('<!-- WARNING'): continue
            cells.append(_md_cell(links(src))); continue
        if c['cell_type'] != 'code': continue
        d, code = _directives(src)
        if re.match(r'show_doc\(.*\)$', code.strip()):
            expr = code.strip()[len('show_doc('):-1]
            cells.append(_md_cell(links(_show_doc_md(expr, ns)))); anchors.add(expr.strip().lower()); continue
        m = _SHOW_TABLE.match(code.strip())
        if m: cells.append(_md_cell(links((nb_path.parent/m.group(1)).read_text(encoding='utf-8')))); continue
        if d.get('include') == 'false' or (not code.strip() and not c.get('outputs')): continue
        tags = [t for t, on in (('remove-input', d.get('echo') == 'false'), ('remove-output', d.get('output') == 'false')) if on]
        cells.append({'cell_type': 'code', 'execution_count': None, 'id': c.get('id'), 'metadata': {'tags': tags} if tags else {},
                      'outputs': [dict(o) for o in c.get('outputs', [])], 'source': code})
    out = {'cells': cells, 'metadata': {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'},
                                       'language_info': {'name': 'python'}}, 'nbformat': 4, 'nbformat_minor': 5}
    for c in out['cells']:
        if not c.get('id'): c.pop('id', None)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding='utf-8')
    return anchors

CONF = '''# generated by tools/make_docs.py
project = "clip_sbir"
author = "clip_sbir developers"
copyright = "2026 onwards, clip_sbir developers"
extensions = ["myst_nb"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "html_image"]
myst_heading_anchors = 4
myst_dmath_double_inline = True
nb_execution_mode = "off"
nb_output_stderr = "remove"
nb_render_markdown_format = "myst"
nb_merge_streams = True
exclude_patterns = ["_build", "**.ipynb_checkpoints", "figures", "*.log"]
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]
html_title = "clip_sbir"
smartquotes = False
html_theme = {theme!r}
html_static_path = {static!r}{mathjax}
html_show_sourcelink = False
html_copy_source = False
'''

def _toctree(caption:str, names:list)->str:
    return f"```{{toctree}}\n:hidden:\n:maxdepth: 1\n:caption: {caption}\n\n" + '\n'.join(names) + "\n```"

def stage(stage_dir:Path, nbs:Path=NBS)->dict:
    "Write the processed sources, figures and conf.py under `stage_dir`; returns {page: source file}"
    if stage_dir.exists(): shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True)
    nbs_list = doc_notebooks(nbs)
    pages, renamed = {}, {}
    for p in nbs_list:                       # nbdev's names can collide (04_train and train): a library page keeps it
        name, key = page_name(p, nbs), str(p.relative_to(nbs).with_suffix(''))
        if name in RESERVED: renamed[name] = name = f'{name}-notebook'   # Sphinx's own pages
        if name in pages.values():
            other = next(k for k, v in pages.items() if v == name)
            if _exports(p): pages[other] = f'{name}-notebook'
            else: name = f'{name}-notebook'
        pages[key] = name
    first = ['method', 'datasets_and_splits', 'metric_definitions']  # the reading order of the pages beside the notebooks
    mds = sorted((p for p in nbs.glob('*.md') if not p.name.startswith(('_', '.'))),
                 key=lambda p: (first.index(p.stem) if p.stem in first else len(first), p.stem))
    srcs, anchors = {}, {}
    for p in nbs_list:
        name = pages[str(p.relative_to(nbs).with_suffix(''))]
        anchors[name] = stage_notebook(p, stage_dir/f'{name}.ipynb', pages, nbs); srcs[name] = p
    for name in anchors:                     # second pass: nbdev's doc links, now that every page's entries are known
        f = stage_dir/f'{name}.ipynb'; nb = json.loads(f.read_text(encoding='utf-8'))
        for c in nb['cells']:
            if c['cell_type'] == 'markdown': c['source'] = _doc_links(c['source'], anchors, name.count('/'), renamed)
        f.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')
    for p in mds:
        if p.stem in srcs: raise ValueError(f"{p.relative_to(nbs)} and {srcs[p.stem].relative_to(nbs)} would both be the page {p.stem}.html: rename one")
        (stage_dir/p.name).write_text(_Links(pages, 0)(p.read_text(encoding='utf-8')), encoding='utf-8'); srcs[p.stem] = p
    if FIGS.is_dir(): shutil.copytree(FIGS, stage_dir/'figures', ignore=shutil.ignore_patterns('*.csv', '*.json'))
    # the index page holds the table of contents: the paper, the library in notebook order, experiments
    ix = stage_dir/'index.ipynb'; nb = json.loads(ix.read_text(encoding='utf-8'))
    lib = [k for k in pages if '/' not in k and pages[k] != 'index']
    groups = {c: [pages[k] for k in lib if series(k) == c] for c, _ in SERIES}
    sub = [pages[k] for k in pages if '/' in k]
    toc = [_toctree('The paper, the data, the metrics', [p.stem for p in mds])] if mds else []
    toc += [_toctree(c, groups[c]) for c, _ in SERIES if groups[c]] + ([_toctree('Experiments', sub)] if sub else [])
    nb['cells'].append(_md_cell('\n\n'.join(toc)))
    ix.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')
    try: import furo  # noqa: F401
    except ImportError: theme = 'alabaster'
    else: theme = 'furo'
    # MathJax ships with the site when the sphinx-mathjax-offline package is installed (its files, not its
    # extension, which would turn off Sphinx's parallel reading); otherwise it comes from its CDN
    try: mj = Path(importlib.util.find_spec('sphinx-mathjax-offline').origin).parent/'static'
    except (AttributeError, ImportError, ValueError): mj = None
    static, mathjax = ([str(mj)], '\nmathjax_path = "mathjax/tex-chtml.js"') if mj and (mj/'mathjax'/'tex-chtml.js').is_file() else ([], '')
    (stage_dir/'conf.py').write_text(CONF.format(theme=theme, static=static, mathjax=mathjax), encoding='utf-8')
    return srcs

def build(out:Path=ROOT/'_docs', stage_dir:Path=ROOT/'_proc', jobs:int=2, quiet:bool=True)->dict:
    "Stage and render the site into `out`; returns {'seconds', 'warnings', 'pages'}"
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        srcs = stage(Path(stage_dir))
    t1 = time.perf_counter()
    log = Path(stage_dir)/'sphinx-warnings.log'
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-j', str(jobs), '-w', str(log), '-E']
    if quiet: cmd.append('-q')
    scratch = Path(out).resolve().parent/'jupyter_execute'          # myst-nb's scratch folder beside the site
    made = not scratch.exists()
    try: r = subprocess.run(cmd + [str(stage_dir), str(out)], cwd=ROOT, capture_output=quiet, text=True)
    finally:
        if made: shutil.rmtree(scratch, ignore_errors=True)
    if r.returncode: raise RuntimeError(f"sphinx-build failed ({r.returncode}):\n{(r.stderr or '')[-3000:]}")
    warn = [l for l in log.read_text().splitlines() if 'WARNING' in l or 'ERROR' in l] if log.exists() else []
    return {'seconds': time.perf_counter() - t0, 'stage_seconds': t1 - t0, 'warnings': warn, 'pages': sorted(srcs)}

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=str(ROOT/'_docs'), help='folder the site is written to')
    ap.add_argument('--stage', default=str(ROOT/'_proc'), help='folder for the processed sources (replaced)')
    ap.add_argument('-j', '--jobs', type=int, default=2, help='Sphinx worker processes')
    a = ap.parse_args()
    res = build(Path(a.out), Path(a.stage), a.jobs)
    for w in res['warnings']: print(w)
    print(f"{len(res['pages'])} pages in {res['seconds']:.0f} s (staging {res['stage_seconds']:.0f} s), "
          f"{len(res['warnings'])} warnings: {Path(a.out)/'index.html'}")
