"""Every field of `SBIRConfig` is introduced where its idea is: exactly one `show_fields(...)` call names it, in a
notebook other than `90_core` (where the fields are declared and `show_fields` is defined and tested)."""
import ast, json
from collections import defaultdict
from pathlib import Path

from clip_sbir.core import config_fields

ROOT = Path(__file__).resolve().parent.parent

def shown_fields()->dict:
    "field name -> the notebooks (relative to nbs/) whose code cells show it with `show_fields(...)`, once per call"
    where = defaultdict(list)
    for p in sorted((ROOT/'nbs').rglob('*.ipynb')):
        if p.name == '90_core.ipynb' or '.ipynb_checkpoints' in p.parts: continue
        for c in json.loads(p.read_text(encoding='utf-8'))['cells']:
            src = ''.join(c['source'])
            if c['cell_type'] != 'code' or 'show_fields(' not in src: continue
            code = '\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('%', '!')))
            for node in ast.walk(ast.parse(code)):
                if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'show_fields':
                    for a in node.args: where[ast.literal_eval(a)].append(p.relative_to(ROOT/'nbs').as_posix())
    return dict(where)

def test_every_field_is_introduced_once():
    where, names = shown_fields(), config_fields()
    never = [n for n in names if n not in where]
    twice = {n: nbs for n, nbs in where.items() if len(nbs) > 1}
    unknown = [n for n in where if n not in names]
    assert not never, f"fields no notebook introduces with show_fields(...): {never}"
    assert not twice, f"fields introduced more than once: {twice}"
    assert not unknown, f"show_fields(...) names that are not fields of SBIRConfig: {unknown}"
