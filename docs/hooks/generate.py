"""MkDocs hook: pages generated from the repository at build time.

* ``reference/config.md``: every section and key of ``workflow/schemas/config.schema.yaml`` with
  its type, default, allowed values and description. The default shown is the value in
  ``config/config.yaml`` (always loaded under any ``--configfile``), else the schema's; the
  description is the schema's, else the key's comment in ``config/config.yaml``.
* ``api/<module>.md``: one mkdocstrings page per module of the ``qmdipole`` package, appended to
  the navigation as "API reference".
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import yaml
from mkdocs.structure.files import File

SCHEMA = "workflow/schemas/config.schema.yaml"
DEFAULTS = "config/config.yaml"
PACKAGE = "src/qmdipole"
CONFIG_PAGE = "reference/config.md"


def _root(config) -> Path:
    return Path(config.config_file_path).resolve().parent


def api_modules(root: Path) -> list[str]:
    """Public modules of the package (``src/qmdipole/*.py`` not starting with ``_``)."""
    return sorted(p.stem for p in (root / PACKAGE).glob("*.py") if not p.stem.startswith("_"))


# ---------------------------------------------------------------------------------------------
# config/config.yaml: values and comments by dotted key


def yaml_comments(text: str) -> dict[str, str]:
    """Comment of every mapping key of a block-style YAML file, by dotted path.

    A key's comment is the ``# ...`` after it on its line plus the comment-only lines that follow,
    indented past the key (continuations).
    """
    comments: dict[str, list[str]] = {}
    stack: list[tuple[int, str]] = []  # (indent, dotted path) of the open mappings
    last = None
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("#"):
            if last is not None and indent > last[0]:
                comments[last[1]].append(stripped[1:].strip())
            else:
                last = None
            continue
        match = re.match(r"\s*([A-Za-z_]\w*):(?:\s|$)", line)
        if not match:
            last = None
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([p for _, p in stack] + [match.group(1)])
        stack.append((indent, match.group(1)))
        _, _, comment = line.partition(" #")
        comments[path] = [comment.strip()] if comment.strip() else []
        last = (indent, path)
    return {key: " ".join(parts) for key, parts in comments.items() if parts}


def _lookup(mapping, dotted: str):
    value = mapping
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


# ---------------------------------------------------------------------------------------------
# The schema, flattened to one entry per key


def _resolve(schema: dict, root: dict) -> dict:
    """``schema`` with a ``$ref`` to ``#/$defs/NAME`` merged in (local keys win)."""
    if "$ref" not in schema:
        return schema
    name = schema["$ref"].removeprefix("#/$defs/")
    if name == schema["$ref"] or name not in root.get("$defs", {}):
        raise ValueError(f"{SCHEMA}: unsupported $ref {schema['$ref']!r}")
    target = _resolve(root["$defs"][name], root)
    return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}


def _condition(test: dict, path: str) -> str:
    """``if`` of an ``allOf`` entry as text: ``model.kind: python``."""
    parts = []
    for key, sub in test.get("properties", {}).items():
        if "const" not in sub:
            raise ValueError(f"{SCHEMA}: unsupported if-condition under {path!r}: {test}")
        parts.append(f"{path}.{key}: {_flow(sub['const'])}")
    return " and ".join(parts)


def _variants(schema: dict, path: str):
    """(condition, subschema) of an object schema: itself, then each if/then/else branch."""
    yield "", schema
    for entry in schema.get("allOf", []):
        if "if" not in entry:
            raise ValueError(f"{SCHEMA}: unsupported allOf entry under {path!r}")
        cond = _condition(entry["if"], path)
        if "then" in entry:
            yield f"when {cond}", entry["then"]
        if "else" in entry:
            yield f"unless {cond}", entry["else"]


def flatten(schema: dict, root: dict, path: str = "", condition: str = ""):
    """One entry per key of the schema, parents before children, in the schema's order.

    An entry is ``{"key", "variants": [(condition, schema, required)]}``; keys of list entries
    are written ``key[].child``, keys under a ``oneOf`` alternative that is an object
    ``key.child``.
    """
    entries: dict[str, dict] = {}

    def add(key, sub, cond, required):
        entry = entries.setdefault(key, {"key": key, "variants": []})
        entry["variants"].append((cond, sub, required))

    def visit(schema, path, cond):
        schema = _resolve(schema, root)
        for branch_cond, branch in _variants(schema, path or "(top level)"):
            branch = _resolve(branch, root)
            full = " and ".join(c for c in (cond, branch_cond) if c)
            required = set(branch.get("required", []))
            for name, sub in branch.get("properties", {}).items():
                key = f"{path}.{name}" if path else name
                sub = _resolve(sub, root)
                add(key, sub, full, name in required)
                visit(sub, key, full)
            if "items" in branch and isinstance(branch["items"], dict):
                visit(branch["items"], f"{path}[]", full)
            for alternative in branch.get("oneOf", []):
                if _resolve(alternative, root).get("type") == "object":
                    visit(alternative, path, full)

    visit(schema, path, condition)
    return list(entries.values())


# ---------------------------------------------------------------------------------------------
# Rendering


def _flow(value) -> str:
    """A value as YAML flow text, as one would write it in a config file."""
    if isinstance(value, float) and math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6)
    return text.removesuffix("\n...\n").strip()


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def _prose(text: str) -> str:
    """Plain text as HTML, with `backticks` as code."""
    parts = re.split(r"`([^`]+)`", text)
    return "".join(_code(p) if i % 2 else html.escape(p) for i, p in enumerate(parts))


def _type(schema: dict, root: dict) -> str:
    schema = _resolve(schema, root)
    if "const" in schema:
        return _code(_flow(schema["const"]))
    if "enum" in schema:
        return " | ".join(_code(_flow(v)) for v in schema["enum"])
    if "oneOf" in schema:
        return " or ".join(_type(alt, root) for alt in schema["oneOf"])
    kinds = schema.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    words = []
    for kind in kinds:
        if kind == "array" and isinstance(schema.get("items"), dict):
            words.append(f"array of {_type(schema['items'], root)}")
        else:
            words.append(html.escape(kind))
    return " or ".join(words)


def _constraints(schema: dict) -> list[str]:
    """Ranges, lengths and patterns of one schema, as short phrases."""
    bounds = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}
    out = [f"{sign} {_flow(schema[k])}" for k, sign in bounds.items() if k in schema]
    if "minItems" in schema and schema.get("minItems") == schema.get("maxItems"):
        out.append(f"exactly {schema['minItems']} entries")
    else:
        out += [f"at least {schema['minItems']} entries"] if "minItems" in schema else []
        out += [f"at most {schema['maxItems']} entries"] if "maxItems" in schema else []
    if "minLength" in schema:
        out.append("non-empty" if schema["minLength"] == 1 else
                   f"at least {schema['minLength']} characters")
    if "minProperties" in schema:
        out.append(f"at least {schema['minProperties']} key(s)")
    if "pattern" in schema:
        out.append(f"matches {_code(schema['pattern'])}")
    if schema.get("additionalProperties") is False:
        out.append("no other keys")
    return [html.escape(c) if "<code>" not in c else c for c in out]


def _allowed(entry: dict, root: dict) -> str:
    lines = []
    for cond, sub, required in entry["variants"]:
        phrases = _constraints(sub)
        items = sub.get("items")
        if isinstance(items, dict):
            phrases += [f"each {c}" for c in _constraints(_resolve(items, root))]
        if required:
            phrases.insert(0, "required")
        if cond and ("type" in sub or "enum" in sub or "const" in sub) and len(entry["variants"]) > 1:
            phrases.insert(0, f"type {_type(sub, root)}")
        if phrases:
            lines.append((cond, ", ".join(phrases)))
    if len({text for _, text in lines}) == 1 and len(lines) == len(entry["variants"]):
        return lines[0][1]  # the same in every branch: no condition to state
    return "<br>".join((f"{_prose(cond)}: " if cond else "") + text for cond, text in lines)


def _description(entry: dict, comments: dict[str, str]) -> str:
    texts = []
    for cond, sub, _ in entry["variants"]:
        text = sub.get("description")
        if text and text not in texts:
            texts.append(text)
    if not texts and entry["key"] in comments:
        texts.append(comments[entry["key"]])
    return "<br>".join(_prose(" ".join(t.split())) for t in texts)


def _default(entry: dict, defaults: dict) -> str:
    """The value in config/config.yaml, else the schema's; none for a mapping (see its keys)."""
    schema_default = next((s["default"] for _, s, _ in entry["variants"] if "default" in s), None)
    has_schema_default = any("default" in s for _, s, _ in entry["variants"])
    try:
        value = _lookup(defaults, entry["key"])
    except KeyError:
        return _code(_flow(schema_default)) if has_schema_default else ""
    if isinstance(value, dict):
        return ""
    text = _code(_flow(value))
    if has_schema_default and json.dumps(schema_default) != json.dumps(value):
        text += (f" (schema default {_code(_flow(schema_default))}, used only where "
                 f"{_code(DEFAULTS)} lacks the key)")
    return text


def config_reference(root: Path) -> str:
    """The configuration reference page (Markdown with HTML tables)."""
    schema = yaml.safe_load((root / SCHEMA).read_text())
    defaults_text = (root / DEFAULTS).read_text()
    defaults = yaml.safe_load(defaults_text)
    comments = yaml_comments(defaults_text)
    entries = flatten(schema, schema)
    out = [
        "# Configuration reference",
        "",
        "Every key the pipeline accepts, generated from `workflow/schemas/config.schema.yaml` "
        "when this site is built. " + " ".join(schema.get("description", "").split()),
        "",
        "**Default** is the value in `config/config.yaml`, which every run starts from (a "
        "`--configfile` or `--config` is merged over it, key by key; lists are replaced whole). "
        "Keys written `key[].child` are keys of each entry of the list `key`. Units are those of "
        "the [conventions](../conventions.md): ħ = 1, energies in Δ = Δ₁ (valley 1's half gap).",
        "",
    ]
    for section in (e for e in entries if "." not in e["key"]):
        name = section["key"]
        out += [f"## `{name}`", ""]
        out += [
            '<table class="config-reference">',
            "<thead><tr><th>key</th><th>type</th><th>default</th><th>allowed</th>"
            "<th>description</th></tr></thead>",
            "<tbody>",
        ]
        for entry in (e for e in entries if e["key"].startswith(name + ".") or e is section):
            cond, sub, _ = entry["variants"][0]
            out.append(
                f'<tr id="{html.escape(entry["key"])}"><td>{_code(entry["key"])}</td>'
                f"<td>{_type(sub, schema)}</td><td>{_default(entry, defaults)}</td>"
                f"<td>{_allowed(entry, schema)}</td><td>{_description(entry, comments)}</td></tr>"
            )
        out += ["</tbody>", "</table>", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# MkDocs events


def on_config(config):
    modules = api_modules(_root(config))
    config["nav"].append(
        {"API reference": ["api/index.md"] + [{f"qmdipole.{m}": f"api/{m}.md"} for m in modules]}
    )
    return config


def on_files(files, config):
    root = _root(config)
    files.append(File.generated(config, CONFIG_PAGE, content=config_reference(root)))
    modules = api_modules(root)
    index = [
        "# API reference",
        "",
        "The package `qmdipole` holds all the physics; the pipeline's scripts only call it. "
        "One page per module, generated from the docstrings:",
        "",
        *(f"- [`qmdipole.{m}`]({m}.md)" for m in modules),
        "",
        "::: qmdipole",
        "    options:",
        "      members: false",
        "      show_root_heading: false",
        "",
    ]
    files.append(File.generated(config, "api/index.md", content="\n".join(index)))
    for module in modules:
        files.append(File.generated(config, f"api/{module}.md", content=f"::: qmdipole.{module}\n"))
    return files
