"""What made a result: content digests of the code that computes it, for caching and provenance.

A pipeline stage must re-run when, and only when, something that can change its numbers changes:
its settings, its inputs, the package modules it runs, and a user model's own source code. Code is
tracked *by content* (a SHA-256 of the source text), never by path or modification time, so that an
edit re-runs exactly the stages that use the edited module, while a re-install, an editable vs a
regular install or a moved checkout re-runs nothing.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from . import __version__

PACKAGE_DIR = Path(__file__).resolve().parent
# Modules whose changes cannot change a number: I/O and provenance themselves.
NOT_PHYSICS = frozenset({"__init__", "io", "provenance"})


def _git(*args) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.cache
def revision() -> dict:
    """Version, git commit and dirty flag of the code that runs.

    From a source checkout of qmdipole itself (an editable install), git is asked; otherwise the
    commit that setuptools-scm recorded when the package was built. The commit of an unrelated
    repository that happens to enclose an installed package is never reported.
    """
    top = _git("rev-parse", "--show-toplevel")
    project = Path(top) / "pyproject.toml" if top else None
    if (project is not None and project.is_file() and PACKAGE_DIR == Path(top) / "src" / "qmdipole"
            and 'name = "qmdipole"' in project.read_text()):
        commit = _git("rev-parse", "HEAD") or "unknown"
        status = _git("status", "--porcelain", "--untracked-files=no")
        return {"version": __version__, "git_commit": commit,
                "git_dirty": "unknown" if status is None else str(bool(status)).lower()}
    try:
        from ._version import commit_id
    except ImportError:
        commit_id = None
    return {"version": __version__,
            "git_commit": commit_id[1:] if commit_id and commit_id.startswith("g") else "unknown",
            "git_dirty": str(".d" in __version__).lower() if commit_id else "unknown"}


class CodeError(ValueError):
    """The code a result depends on cannot be found."""


def _imported_modules(path: Path, package: str | None) -> list[str]:
    """Absolute names of the modules imported by the source file ``path`` (relative imports
    resolved against ``package``, the package the file belongs to)."""
    return list(_imports_of_source(path.read_text(), str(path), package))


@functools.lru_cache(maxsize=None)
def _imports_of_source(source: str, filename: str, package: str | None) -> tuple[str, ...]:
    """:func:`_imported_modules` of one source text, parsed once per process (a workflow digests
    the same modules for many rules)."""
    names = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = (package or "").split(".") if package else []
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = ".".join(p for p in (base, node.module) if p)
            else:
                module = node.module or ""
            names.append(module)
            # `from pkg import name` may import a submodule `pkg.name`
            names.extend(f"{module}.{alias.name}" for alias in node.names if module)
    return tuple(name for name in names if name)


def _package_file(module: str) -> Path | None:
    """The source file of ``qmdipole.<name>`` (or of ``<name>``, a module of this package)."""
    name = module.split(".", 1)[1] if module.startswith("qmdipole.") else module
    path = PACKAGE_DIR / f"{name.split('.')[0]}.py"
    return path if path.exists() else None


def package_sources(*modules: str) -> list[Path]:
    """Source files of the package modules ``modules`` and of every package module they import,
    transitively; I/O and provenance left out (they cannot change a number)."""
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen or name in NOT_PHYSICS:
            continue
        path = PACKAGE_DIR / f"{name}.py"
        if not path.exists():
            raise CodeError(f"qmdipole has no module {name!r}")
        seen[name] = path
        for imported in _imported_modules(path, "qmdipole"):
            if imported.startswith("qmdipole.") and (_package_file(imported) is not None):
                todo.append(imported.split(".")[1])
    return [seen[name] for name in sorted(seen)]


def _digest(paths) -> str:
    """SHA-256 (16 hex digits) of the files' names and contents: where they lie does not count."""
    sha = hashlib.sha256()
    for path in paths:
        sha.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()[:16]


def code_digest(*modules: str, data: tuple[str, ...] = ()) -> str:
    """Content digest of the package modules ``modules`` (with what they import) and of the
    package data files ``data`` (e.g. the plot style): equal digests, equal code."""
    paths = package_sources(*modules) + [PACKAGE_DIR / name for name in data]
    return _digest(paths)


def _find_user_module(module: str, roots) -> Path | None:
    """The source file of ``module`` below one of ``roots``, without importing anything."""
    relative = Path(*module.split("."))
    for root in roots:
        for candidate in (Path(root) / relative.with_suffix(".py"), Path(root) / relative / "__init__.py"):
            if candidate.is_file():
                return candidate.resolve()
    return None


def user_sources(module: str, root=None) -> list[Path]:
    """Source files of a user's module and of every module it imports from the same directory
    tree, transitively. The module is looked up in ``root`` (default: the working directory), then
    on ``sys.path``; an installed module (in site-packages) counts alone, its own dependencies are
    versioned by their installers.
    """
    root = Path(root or os.getcwd()).resolve()
    for base in [root, *(Path(p) for p in sys.path if p and Path(p).is_dir())]:
        first = _find_user_module(module, [base])
        if first is not None:
            break
    else:
        raise CodeError(f"model.factory module {module!r} is found neither in {root} nor on sys.path")
    follow = not any(part in ("site-packages", "dist-packages") for part in base.parts)
    found: dict[Path, str] = {}
    todo = [(module, first)]
    while todo:
        name, path = todo.pop()
        if path in found:
            continue
        found[path] = name
        if not follow:
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in _imported_modules(path, package):
            target = _find_user_module(imported, [base])
            if target is not None and target not in found:
                todo.append((imported, target))
    return sorted(found)


def user_code_digest(factory: str, root=None) -> str:
    """Content digest of the code behind ``model.factory`` ('package.module:function')."""
    module = str(factory).partition(":")[0]
    return _digest(user_sources(module, root))
