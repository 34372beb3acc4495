# Helpers shared by the rules: config validation, per-valley parameters, package-code inputs.

import ast
from pathlib import Path

import yaml

import qmdipole
from qmdipole.kgrid import requirements
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# Where the imported package lives (the checkout for `pip install -e .`, else site-packages).
PACKAGE_DIR = Path(qmdipole.__file__).resolve().parent
# Modules whose changes do not change any number: I/O and provenance.
NOT_PHYSICS = {"__init__", "io"}
# The plot style every figure rule reads (a change re-renders the figures and nothing else).
STYLE = str(PACKAGE_DIR / "paper.mplstyle")


def _retyped(value):
    """Numbers and booleans given as strings, read as such: ``--config key={...}`` hands nested
    values over as strings, and PyYAML reads ``1e-4`` (no decimal point) as a string."""
    if isinstance(value, dict):
        return {key: _retyped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_retyped(item) for item in value]
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if isinstance(parsed, (int, float, bool, type(None))):
            return parsed
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _sorted_keys(value):
    """``value`` with every dict's keys sorted: Snakemake compares params by their repr, so the
    order in which a config file lists keys must not look like a change."""
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def check_config(config, schema):
    """Validate ``config`` (setting the schema's defaults); errors name the offending key.

    Afterwards every dict of ``config`` has sorted keys (see _sorted_keys).
    """
    config.update(_retyped(config))
    try:
        validate(config, schema)
    except WorkflowError as err:
        cause = err.__cause__ or err.__context__  # the jsonschema ValidationError
        if not hasattr(cause, "absolute_path"):
            raise
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in cause.absolute_path)
        raise WorkflowError(
            f"invalid configuration: {key.lstrip('.') or '(top level)'}: {cause.message}"
        ) from None
    problems = [
        f"{section}.{key}.stop must be > {section}.{key}.start"
        for section, key in (("quadrupolar_current", "mu"), ("ndd", "omega"))
        if not config[section][key]["stop"] > config[section][key]["start"]
    ]
    if config["qmd_field"]["valley"] > len(config["model"]["valleys"]):
        problems.append(
            f"qmd_field.valley is {config['qmd_field']['valley']} but model.valleys has "
            f"{len(config['model']['valleys'])} entries"
        )
    if problems:
        raise WorkflowError("invalid configuration: " + "; ".join(problems))
    canonical = _sorted_keys(config)
    config.clear()
    config.update(canonical)


def valley_model(valley):
    """The ``model:`` section reduced to valley ``valley`` (1-based), as valley 0 of a one-valley
    model: a rule's params then change only when the global keys or this valley's entry change."""
    section = {key: value for key, value in config["model"].items() if key != "valleys"}
    return {**section, "valleys": [config["model"]["valleys"][int(valley) - 1]]}


def pkg(*names):
    """The package's source files of the modules ``names`` and of every package module they import
    (transitively), I/O left out: as rule inputs they re-run a stage when its physics code changes."""
    seen, todo = set(), list(names)  # the named modules are inputs even before they exist
    while todo:
        name = todo.pop()
        if name in seen or name in NOT_PHYSICS:
            continue
        seen.add(name)
        path = PACKAGE_DIR / f"{name}.py"
        if not path.exists():
            continue  # reported by Snakemake as a missing input of the rule
        imported = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    imported.append(node.module.split(".")[0])
                else:
                    imported.extend(alias.name for alias in node.names)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                imported.extend(m.split(".")[1] for m in modules if m and m.startswith("qmdipole."))
        # `from . import x` may import a name of __init__, not a module: keep real modules only
        todo.extend(m for m in imported if (PACKAGE_DIR / f"{m}.py").exists())
    return sorted(str(PACKAGE_DIR / f"{name}.py") for name in seen)


wildcard_constraints:
    valley=r"[1-9]\d*",
