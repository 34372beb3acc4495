"""Griffe extension: the package's reStructuredText-flavoured docstrings as Markdown.

* ``:mod:`x```, ``:func:`x```, ``:class:`x```, ... (with ``~`` for the last name only, or
  ``title <x>``) become cross-references to the API pages when ``x`` names a documented object
  (resolved from the docstring's class, then module, then package), otherwise inline code;
* the conventions file that docstrings cite (``docs/conventions.md``, or the developers' notes
  it was written from) becomes a link to the Conventions page.

``double backticks`` need nothing: they are already Markdown inline code. Outside code, the
characters Markdown would misread in plain-text math are escaped: ``_`` (``∂_i n·∂_j n``), ``[``
(``[−∂f/∂ε](μ′ − μ)`` is no link), ``<`` before a letter (no HTML tag), and a ``*`` that is not
part of ``**bold**``, ``*emphasis*`` or a list bullet (``σ*_xx``, ``E*(k_z)``). Indented code
blocks are left as they are.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(?:mod|func|class|meth|attr|data|exc|obj|const):`([^`]+)`")
TITLED = re.compile(r"^(?P<title>.*\S)\s*<(?P<target>[^>]+)>$")
CONVENTIONS = re.compile(r"``docs/conventions\.md``|docs/conventions\.md|DESIGN\.md")
CONVENTIONS_LINK = "[conventions][conventions]"
CODE_SPAN = re.compile(r"(``.+?``|`[^`\n]+`)", re.DOTALL)
EMPHASIS = re.compile(r"(?<![\w*])(\*\*?)(?=[^\s*])(.+?)(?<=[^\s*])\1(?![\w*])")
BULLET = re.compile(r"^[ \t]*\* ", re.MULTILINE)
UNDERLINE = re.compile(r"^\s*-{3,}\s*$")  # under a numpy-style section title


def _escape_plain(text: str) -> str:
    """Escape what Markdown would misread in a piece of plain (non-code) text."""
    kept = []

    def keep(match: re.Match) -> str:
        kept.append(match.group(0))
        return f"\0{len(kept) - 1}\0"

    text = BULLET.sub(keep, text)
    text = text.replace("_", r"\_").replace("[", r"\[")
    text = re.sub(r"<(?=[A-Za-z/!])", "&lt;", text)
    text = EMPHASIS.sub(keep, text).replace("*", r"\*")
    while "\0" in text:  # emphasis may hold a kept bullet: restore until none is left
        text = re.sub("\0(\\d+)\0", lambda m: kept[int(m.group(1))], text)
    return text


def _verbatim_lines(lines: list[str]) -> set[int]:
    """Indices of lines Markdown shows as they are: indented code blocks, section titles and the
    entry lines (``name : type``) of numpy-style sections, which the docstring parser reads."""
    verbatim = set()
    block_indent = None  # indentation of the current indented code block
    section_indent = None  # indentation of the current numpy-style section's title
    previous_indent, previous_blank = 0, True
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if not line.strip():
            previous_blank = True
            continue
        if indent == section_indent and not UNDERLINE.match(line):  # "name : type" of a section
            verbatim.add(i)
            previous_indent, previous_blank = indent, False
            continue
        if block_indent is not None and indent >= block_indent:
            verbatim.add(i)
            continue
        block_indent = None
        if previous_blank and indent >= previous_indent + 4 and i > 0:
            block_indent = indent
            verbatim.add(i)
            continue
        if i + 1 < len(lines) and UNDERLINE.match(lines[i + 1]):
            verbatim.add(i)
            section_indent = indent
        previous_indent, previous_blank = indent, False
    return verbatim


def markdown_safe(text: str) -> str:
    """``text`` with plain-text math escaped outside code spans and verbatim lines."""
    lines = text.split("\n")
    verbatim = _verbatim_lines(lines)
    out, paragraph = [], []

    def flush():
        if paragraph:
            parts = CODE_SPAN.split("\n".join(paragraph))
            out.append("".join(p if i % 2 else _escape_plain(p) for i, p in enumerate(parts)))
            paragraph.clear()

    for i, line in enumerate(lines):
        if i in verbatim:
            flush()
            out.append(line)
        else:
            paragraph.append(line)
    flush()
    return "\n".join(out)


def _documented(obj) -> bool:
    """Rendered on an API page: reached through public names, not an import of another module."""
    return not obj.is_alias and not any(part.startswith("_") for part in obj.path.split("."))


class RstRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = self.convert(obj.docstring.value, obj, pkg)

    def convert(self, text: str, obj, pkg) -> str:
        def role(match: re.Match) -> str:
            target = match.group(1).strip()
            titled = TITLED.match(target)
            title = None
            if titled:
                title, target = titled.group("title"), titled.group("target")
            short = target.startswith("~")
            target = target.lstrip("~").removesuffix("()")
            title = title or (target.rsplit(".", 1)[-1] if short else target)
            found = _resolve(target, obj, pkg)
            if found is None:
                return f"`{title}`"
            return f"[`{title}`][{found.path}]"

        return CONVENTIONS.sub(CONVENTIONS_LINK, ROLE.sub(role, markdown_safe(text)))


def _walk(obj):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


def _member(base, dotted: str):
    for part in dotted.split("."):
        members = getattr(base, "members", {})
        if part not in members:
            return None
        base = members[part]
        if base.is_alias:
            try:
                base = base.final_target
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                return None
    return base


def _resolve(target: str, obj, pkg):
    """The documented object ``target`` names, seen from ``obj``'s class, module, package."""
    scopes = []
    scope = obj
    while scope is not None:
        if scope.is_class or scope.is_module:
            scopes.append(scope)
        scope = scope.parent
    if target.startswith(pkg.name + "."):
        scopes, target = [pkg], target.removeprefix(pkg.name + ".")
    elif target == pkg.name:
        return pkg
    for scope in scopes:
        found = _member(scope, target)
        if found is not None and found.path.startswith(pkg.name) and _documented(found):
            return found
    return None
