"""The documentation: no pointer to a file outside the repository, relative links that resolve, index's reading
order (the method one click from its first equation, the infrastructure after it), and the site
(`tools/make_docs.py`) built into a temporary folder, served on loopback and opened in headless Chromium: the
index with README's figures and tables, a loss page with its figure, the API entry of `build_encoder`, and a
search for "Sgarro" that lands on the regulariser. Screenshots go to the test's tmp folder.

The browser part needs what tools/install_browser.sh installs, and Sphinx + myst-nb (`pip install -e ".[dev]"`);
it is skipped without them, unless CI is set (then it fails)."""
import functools, http.server, re, subprocess, sys, threading, time
from pathlib import Path

import pytest

from test_browser import CHROMIUM, CHROMIUM_ARGS, _need

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))

# ---------------------------------------------------------------------------------------------
# References a reader of the repository cannot follow
# ---------------------------------------------------------------------------------------------
# Files that the project's own sessions keep beside the repository: a reader has none of them.
OUTSIDE = re.compile(r'PAPER\.md|DATASETS\.md|DEVELOPERS\.md|STYLE\.md|seed section|\bseed/|shared/')
SCOPE = ['nbs', 'clip_sbir', 'configs', 'tools', 'docs', 'bench', 'tests', 'README.md', 'settings.ini', 'setup.py']
# Justified exceptions, as (file, text on the line): the standard split file lists that test_datasets can use
# when they sit beside the repository (the tests skip without them), and this test's own pattern.
ALLOWED = [('tests/test_datasets.py', "ROOT.parent/'shared'/'data'/'splits'"), ('tests/test_docs.py', 'OUTSIDE = re.compile')]

def _text_files():
    for s in SCOPE:
        p = ROOT/s
        files = [p] if p.is_file() else [f for f in p.rglob('*') if f.is_file()] if p.is_dir() else []
        for f in files:
            if f.suffix in {'.png', '.jpg', '.pt', '.safetensors', '.pyc', '.npz', '.gz'} or '__pycache__' in f.parts: continue
            try: yield f, f.read_text(encoding='utf-8')
            except UnicodeDecodeError: continue

def test_no_reference_outside_the_repository():
    hits = []
    for f, text in _text_files():
        rel = f.relative_to(ROOT).as_posix()
        for i, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line) and not any(rel == a and s in line for a, s in ALLOWED):
                hits.append(f"{rel}:{i}: {line.strip()[:160]}")
    assert not hits, "references to files outside the repository (link the pages in nbs/ instead):\n" + '\n'.join(hits)

# ---------------------------------------------------------------------------------------------
# Relative links in the documents and notebooks resolve (as GitHub shows them)
# ---------------------------------------------------------------------------------------------
_LINK = re.compile(r'\]\((?!https?:|mailto:|#)([^)\s]+?)\)')
_SLUG = lambda t: re.sub(r'[^\w\- ]', '', t.strip().lower()).replace(' ', '-')

def _markdown_of(f:Path)->str:
    if f.suffix == '.md': return f.read_text(encoding='utf-8')
    import json
    nb = json.loads(f.read_text(encoding='utf-8'))
    return '\n\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')

def _anchors(f:Path)->set:
    "GitHub-style heading anchors of a Markdown file or a notebook's Markdown cells"
    text = re.sub(r'```.*?```', '', _markdown_of(f), flags=re.S)
    return {_SLUG(m.group(1)) for m in re.finditer(r'^#{1,6}\s+(.+?)\s*#*\s*$', text, re.M)}

def test_relative_links_resolve():
    files = sorted(ROOT.glob('nbs/**/*.ipynb')) + sorted(ROOT.glob('nbs/**/*.md')) + [ROOT/'README.md']
    bad = []
    for f in files:
        text = re.sub(r'```.*?```', '', _markdown_of(f), flags=re.S)
        for m in _LINK.finditer(text):
            target, _, frag = m.group(1).partition('#')
            dest = (f.parent/target).resolve() if target else f
            if not dest.exists(): bad.append(f"{f.relative_to(ROOT)}: {m.group(1)} (no such file)")
            elif frag and dest.suffix in ('.md', '.ipynb') and frag not in _anchors(dest):
                bad.append(f"{f.relative_to(ROOT)}: {m.group(1)} (no heading with anchor #{frag})")
    assert not bad, '\n'.join(bad)

# ---------------------------------------------------------------------------------------------
# Reading order: index leads to the method first, the infrastructure last
# ---------------------------------------------------------------------------------------------
_NUMBERED = re.compile(r'^(\d+)[a-z]?_')

def _library_notebooks()->list:
    "The numbered library notebooks, in file-name (reading) order"
    return sorted(p.stem for p in (ROOT/'nbs').glob('*.ipynb') if _NUMBERED.match(p.name))

def _section(text:str, anchor:str)->str:
    "The text of the heading whose anchor is `anchor`, up to the next heading of its level or above"
    for m in re.finditer(r'^(#{1,6})\s+(.+?)\s*$', text, re.M):
        if _SLUG(m.group(2)) == anchor:
            end = re.compile(rf'^#{{1,{len(m.group(1))}}}\s', re.M).search(text, m.end())
            return text[m.end():end.start() if end else len(text)]
    raise AssertionError(f"no heading with anchor #{anchor}")

def test_index_reads_the_method_first():
    index = ROOT/'nbs'/'index.ipynb'
    text = re.sub(r'```.*?```', '', _markdown_of(index), flags=re.S)
    path = _section(text, 'read-the-method')
    assert text.index('## Read the method') < text.index('## Install'), "the reading path opens index, before the install"
    links = [m.group(1) for m in _LINK.finditer(path)]
    # one click from the path's first step to the method's first equation
    first_step = re.search(r'^1\.\s.*?(?=^\d+\.\s)', path, re.M | re.S).group(0)
    reached = []
    for target, _, frag in (l.partition('#') for l in _LINK.findall(first_step)):
        if frag and target.endswith(('.md', '.ipynb')):
            reached.append('$$' in _section(re.sub(r'```.*?```', '', _markdown_of(ROOT/'nbs'/target), flags=re.S), frag))
    assert any(reached), f"no link of the first step lands on a section with an equation: {first_step}"
    # every library notebook is on the path; the method's (numbered below 90) all come before the infrastructure's
    firsts = list(dict.fromkeys(Path(l.partition('#')[0]).stem for l in links if l.partition('#')[0].endswith('.ipynb')))
    missing = [n for n in _library_notebooks() if n not in firsts]
    assert not missing, f"index's reading path does not link {missing}"
    infra = [i for i, n in enumerate(firsts) if _NUMBERED.match(n) and int(_NUMBERED.match(n).group(1)) >= 90]
    method = [i for i, n in enumerate(firsts) if n not in [firsts[j] for j in infra]]
    assert max(method) < min(infra), f"the reading path mixes the appendix into the method: {firsts}"
    # "What is in the box" lists each of them once, in the same order
    box = _section(text, 'what-is-in-the-box')
    listed = [n for n in re.findall(r'`([^`]+)`', ''.join(l.split('|')[1] for l in box.splitlines() if l.startswith('| `'))) if _NUMBERED.match(n)]
    assert listed == _library_notebooks(), f"What is in the box: {listed}"

# ---------------------------------------------------------------------------------------------
# The site, in Chromium
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope='session')   # session: kept while other modules' tests run between its own (xdist)
def site(tmp_path_factory):
    "Build the site once into a temporary folder; yields (site folder, build result)"
    for mod in ('sphinx', 'myst_nb'):
        try: __import__(mod)
        except ImportError: _need(False, f"{mod} is not installed (pip install -e '.[dev]')")
    import make_docs
    tmp = tmp_path_factory.mktemp('docs')
    res = make_docs.build(tmp/'site', tmp/'stage')
    return tmp/'site', res

@pytest.fixture(scope='session')   # session: kept while other modules' tests run between its own (xdist)
def served(site):
    "The site on a loopback HTTP server; yields its base URL"
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    handler = functools.partial(Quiet, directory=str(site[0]))
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True); t.start()
    try: yield f'http://127.0.0.1:{srv.server_address[1]}'
    finally: srv.shutdown(); srv.server_close(); t.join(10)

@pytest.mark.slow
def test_site_builds_cleanly(site):
    out, res = site
    assert res['warnings'] == [], '\n'.join(res['warnings'])
    for page in ('index', 'method', 'datasets', 'datasets_and_splits', 'metric_definitions', 'metrics', 'losses', 'models.prompts', 'core', 'knn', 'search', 'search-notebook', 'train-notebook'):
        assert (out/f'{page}.html').is_file(), page
    assert (out/'searchindex.js').is_file()
    print(f"site: {len(res['pages'])} pages in {res['seconds']:.0f} s (staging {res['stage_seconds']:.0f} s)")

@pytest.mark.slow
@pytest.mark.parametrize('page,n_images,n_tables', [
    ('experiments/ablations', 2, 2),   # the components and sweeps figures; the rows and the results table
    ('experiments/baselines', 3, 4),   # the bars and two qualitative figures; the validation sweep, the rows, the zs and fg tables
    ('experiments/widgets', 2, 0),     # the browser and the canvas, as the browser test saw them
    ('train-notebook', 2, 1),          # the loss curves and the retrievals; the results table
])
def test_result_pages_show_their_figures_and_tables(site, page, n_images, n_tables):
    "The pages readers come for show what their notebooks found: committed outputs, images that exist in the site"
    out, _ = site
    html = (out/f'{page}.html').read_text(encoding='utf-8')
    body = html[html.index('<article'):html.index('</article>')] if '<article' in html else html
    srcs = re.findall(r'<img [^>]*src="([^"]+)"', body)
    assert len(srcs) >= n_images, (page, srcs)
    for src in srcs:
        if not src.startswith('data:'): assert ((out/page).parent/src.split('#')[0]).resolve().is_file(), (page, src)
    assert body.count('<table') >= n_tables, (page, body.count('<table'))

_LOADED = "els => els.map(e => e.complete && e.naturalWidth > 0)"
_IN_VIEW = "a => { const e = document.getElementById(a); if (!e) return false; const t = e.getBoundingClientRect().height === 0 && e.nextElementSibling ? e.nextElementSibling : e; const r = t.getBoundingClientRect(); return r.top >= -5 && r.top < innerHeight; }"

@pytest.mark.slow
def test_site_in_chromium(served, site, tmp_path):
    _need(Path(CHROMIUM).is_file(), f"{CHROMIUM} is not installed")
    try: from playwright.sync_api import sync_playwright
    except ImportError: _need(False, "the playwright package is not installed")
    base, errors = served, []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={'width': 1300, 'height': 900})
            page.set_default_timeout(30_000)
            page.on('pageerror', lambda e: errors.append(str(e)))
            # the index: README's figures load, its tables come from docs/figures
            page.goto(f'{base}/index.html')
            assert 'clip_sbir' in page.title()
            figs = page.locator('article img')
            assert figs.count() >= 6, figs.count()
            assert all(figs.evaluate_all(_LOADED)), "an index figure did not load"
            assert page.locator('article table').count() >= 4
            assert page.get_by_text('gain / std').count() >= 1, "the seeds table is missing"
            page.screenshot(path=str(tmp_path/'index.png'))
            # a loss page with its figures
            page.goto(f'{base}/losses.html')
            assert page.locator('h1').first.inner_text().startswith('Losses')
            imgs = page.locator('article .cell_output img')
            assert imgs.count() >= 1 and all(imgs.evaluate_all(_LOADED)), "the losses page shows no figure"
            page.locator('mjx-container').first.wait_for()             # the equations typeset (MathJax ships with the site)
            imgs.first.scroll_into_view_if_needed(); page.screenshot(path=str(tmp_path/'losses.png'))
            # the API entry of build_encoder, from its docments
            page.goto(f'{base}/models.prompts.html#build_encoder')
            page.locator('[id="build_encoder"]').first.wait_for(state='attached')
            section = page.locator('section[id="build-encoder"]')
            assert 'def build_encoder(' in section.inner_text() and '#' in section.locator('pre').first.inner_text()
            page.wait_for_function(_IN_VIEW, arg='build_encoder')      # the browser scrolled to the entry
            # search for "Sgarro": a result on the losses page that lands inside the regulariser's section
            page.goto(f'{base}/search.html?q=Sgarro')
            results = page.locator('#search-results li a')
            results.first.wait_for()
            hrefs = results.evaluate_all("els => els.map(e => e.getAttribute('href'))")
            target = [h for h in hrefs if h.startswith('losses.html#')]
            assert target, hrefs
            page.screenshot(path=str(tmp_path/'search.png'))
            page.locator(f'#search-results li a[href="{target[0]}"]').first.click()
            page.wait_for_url(re.compile(r'losses\.html.*#'))
            anchor = page.evaluate("() => decodeURIComponent(location.hash.slice(1))")
            page.wait_for_function(_IN_VIEW, arg=anchor)
            head = page.evaluate("a => { const s = document.getElementById(a).closest('section[id*=\"regulariser\"]'); return s ? s.querySelector('h2').innerText : ''; }", anchor)
            assert 'Sgarro' in head and 'regulariser' in head, (anchor, head)
            page.screenshot(path=str(tmp_path/'search_landing.png'))
            assert not errors, errors
        finally:
            browser.close()
    print(f"screenshots in {tmp_path}")

# ---------------------------------------------------------------------------------------------
# README's result tables are the files in docs/figures
# ---------------------------------------------------------------------------------------------
def test_readme_tables_are_the_files():
    import json, make_readme
    nb = json.loads(make_readme.NB.read_text(encoding='utf-8'))
    shown = [c for c in nb['cells'] if make_readme.table_of(c) is not None]
    files = {make_readme.SHOW_TABLE.match(make_readme._code(c)[1]).group(1) for c in shown}
    assert {'../docs/figures/seeds.md', '../docs/figures/ablations.md', '../docs/figures/baselines_zs.md',
            '../docs/figures/baselines_fg.md', '../docs/figures/search_bench.md', '../docs/figures/world_card.md'} <= files, files
    readme = make_readme.render()
    for f in files: assert (make_readme.NB.parent/f).read_text(encoding='utf-8').strip() in readme, f
    assert make_readme.stale_tables(nb) == []
    shown[0]['outputs'][0]['data']['text/markdown'][-1] += ' (edited by hand)'   # a drifted stored output is caught
    assert make_readme.stale_tables(nb) == [nb['cells'].index(shown[0])]

# ---------------------------------------------------------------------------------------------
# Prose that restates what the code holds
# ---------------------------------------------------------------------------------------------
def test_pages_state_what_the_code_holds():
    "method §5's table is the dataset specs' paper numbers; the metrics page names every key a run writes; the fg gallery rule"
    from clip_sbir.datasets import DATASET_SPECS
    from clip_sbir.eval import ZS_KEYS, FG_KEYS, fg_photos
    method, metrics = (ROOT/'nbs'/'method.md').read_text(), (ROOT/'nbs'/'metric_definitions.md').read_text()
    names = {'ours': 'Ours', 'deep': 'B-Deep', 'lin': 'B-Lin', 'ft': 'B-FT'}
    rows = {r.split('|')[1].strip(): [float(v) for v in r.split('|')[2:-1]] for r in method.splitlines()
            if r.startswith('| ') and r.split('|')[1].strip() in names.values()}
    for m, label in names.items():
        spec = [v for d in ('sketchy', 'tuberlin', 'quickdraw') for v in DATASET_SPECS[d].paper['zs'][m].values()]
        assert rows[label] == spec, (label, rows[label], spec)
    for m, (a1, a5) in {'ours': (28.68, 62.34), 'deep': (27.62, 61.56)}.items():
        assert DATASET_SPECS['sketchy'].paper['fg'][m] == {'acc@1': round(a1 / 100, 4), 'acc@5': round(a5 / 100, 4)}
        assert f"{a1:.2f} %" in method and f"{a5:.2f} %" in method
    section5 = metrics.split('## 5.')[1].split('## 6.')[0]
    for k in ZS_KEYS + FG_KEYS: assert f'`{k}`' in section5, k
    assert 'photo_basic' in metrics and 'photo_basic' in fg_photos.__doc__          # the fg gallery: photos with sketches
    assert 'known gap' not in metrics and 'extended photos included' not in method
