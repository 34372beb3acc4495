"""The documentation site builds in strict mode (every warning an error) and is complete.

The configuration reference must list every key of the schema and the API reference every
module of the package; both are found here independently of the hooks that generate them.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
FORBIDDEN = re.compile(r"DESIGN\.md|STYLE\.md|\.\./shared")


def schema_keys(schema: dict, root: dict, path: str = "") -> set[str]:
    """Dotted path of every property anywhere in the schema (``key[].child`` inside list items)."""
    if "$ref" in schema:
        schema = {**root["$defs"][schema["$ref"].split("/")[-1]], **schema}
        schema.pop("$ref")
    keys = set()
    for name, sub in schema.get("properties", {}).items():
        key = f"{path}.{name}" if path else name
        keys |= {key} | schema_keys(sub, root, key)
    if isinstance(schema.get("items"), dict):
        keys |= schema_keys(schema["items"], root, f"{path}[]")
    for sub in schema.get("oneOf", []) + schema.get("anyOf", []):
        keys |= schema_keys(sub, root, path)
    for sub in schema.get("allOf", []):
        for branch in ("then", "else"):
            keys |= schema_keys(sub.get(branch, {}), root, path)
    return keys


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-5000:]}"
    return out


def _text(page: Path) -> str:
    return html.unescape(page.read_text(encoding="utf-8"))


def test_schema_walk_finds_nested_keys():
    keys = schema_keys(yaml.safe_load(SCHEMA.read_text()), yaml.safe_load(SCHEMA.read_text()))
    assert {"model.valleys[].delta", "kgrid.window.k1", "ndd.omega.num", "figures.dpi"} <= keys


def test_config_reference_lists_every_schema_key(site):
    schema = yaml.safe_load(SCHEMA.read_text())
    page = _text(site / "reference" / "config.html")
    keys = schema_keys(schema, schema)
    missing = sorted(k for k in keys if f"<code>{k}</code>" not in page)
    assert not missing, f"keys of {SCHEMA.name} missing from the configuration reference: {missing}"
    rows = {m.group(1): m.group(2) for m in re.finditer(r'<tr id="([^"]+)">(.*?)</tr>', page, re.S)}
    assert set(rows) == keys, sorted(set(rows) ^ keys)
    # every enum value and description of the schema appears in its key's row
    for key, sub in _key_schemas(schema):
        row = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", rows[key]))
        for value in sub.get("enum", []):
            assert str(value) in row, (key, value)
        if "description" in sub:
            assert " ".join(sub["description"].split()) in row, key


def _key_schemas(schema):
    """(dotted key, schema) of every described or enumerated property (plain properties only)."""
    for section, sec in schema["properties"].items():
        for name, sub in sec.get("properties", {}).items():
            yield f"{section}.{name}", sub
    for name, sub in schema["$defs"]["valley"]["properties"].items():
        yield f"model.valleys[].{name}", sub


def test_config_reference_defaults_are_those_of_config_yaml(site):
    """The default shown is what a run starts from (config/config.yaml), not the schema's."""
    page = _text(site / "reference" / "config.html")
    rows = {m.group(1): m.group(2) for m in re.finditer(r'<tr id="([^"]+)">(.*?)</tr>', page, re.S)}
    defaults = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for key, value in [("ndd.eta", "0.02"), ("kgrid.n", "[120, 4, 240]"), ("model.kind", "valley"),
                       ("qmd_field.kx_max", ".inf"), ("model.mass", "1.9")]:
        section, name = key.split(".")
        assert yaml.safe_load(value) == defaults[section][name], key  # the page shows config.yaml's
        cells = re.findall(r"<td>(.*?)</td>", rows[key], re.S)
        assert cells[2].startswith(f"<code>{value}</code>"), (key, cells[2])


def test_api_reference_has_a_page_per_module(site):
    modules = sorted(p.stem for p in (ROOT / "src" / "qmdipole").glob("*.py")
                     if not p.stem.startswith("_"))
    assert {"models", "ndd", "quadrupolar", "wannier90", "config"} <= set(modules)
    for module in modules:
        page = site / "api" / f"{module}.html"
        assert page.is_file(), f"no API page for qmdipole.{module}"
        assert f'id="qmdipole.{module}"' in page.read_text(encoding="utf-8"), module
    # docstring markup is rendered, not shown raw
    for page in (site / "api").glob("*.html"):
        text = _text(page)
        assert not re.search(r":(mod|func|class|meth|data):`", text), page.name
    ndd = _text(site / "api" / "ndd.html")
    assert "σ*_xx(−z*, q)" in re.sub(r"<[^>]+>", "", ndd)  # a literal *, not emphasis


def test_no_page_cites_developer_notes(site):
    sources = [p for p in (ROOT / "docs").rglob("*") if p.is_file()] + [ROOT / "mkdocs.yml"]
    pages = list(site.rglob("*.html"))
    cited = [str(p) for p in sources + pages
             if p.suffix in {".md", ".html", ".yml"} and FORBIDDEN.search(p.read_text("utf-8"))]
    assert not cited, f"pages that cite notes users do not have: {cited}"
