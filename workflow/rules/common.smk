# Helpers shared by the rules: config validation, per-valley parameters, code digests, paths.

import os

import yaml

import qmdipole.accuracy
import qmdipole.config
import qmdipole.models
import qmdipole.provenance
import qmdipole.sweeps
import qmdipole.units
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


SCHEMA = os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml")


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
    # kind: wannier90 is one component; its files must exist (checked here, at dry run too)
    config["model"]["valleys"] = qmdipole.models.components(config["model"])
    if config["model"]["kind"] == "wannier90":
        try:
            qmdipole.models.wannier90_files(config["model"])
        except qmdipole.models.ModelError as err:
            raise WorkflowError(f"invalid configuration: {err}") from None
    problems = qmdipole.config.problems(config)
    if problems:
        raise WorkflowError("invalid configuration: " + "; ".join(problems))
    canonical = _sorted_keys(config)
    config.clear()
    config.update(canonical)


def in_run(path, settings=None):
    """``path`` ("results/..." or "logs/...") of this run (or of the run of config ``settings``):
    with ``run.name`` set, under ``results/{run.name}/...`` and ``logs/{run.name}/...``, so that
    named runs never overwrite each other; unset, ``path`` itself."""
    name = (settings or config)["run"]["name"]
    if not name:
        return path
    top, rest = path.split("/", 1)
    return f"{top}/{name}/{rest}"


def sweep_plan(config):
    """Every sweep of ``config`` as its name -> [(point, point's config)], each point's config
    checked as a run's (schema, qmdipole.config); an error names the sweep and the point."""
    try:
        plan = qmdipole.sweeps.plan(config)
    except qmdipole.sweeps.SweepError as err:
        raise WorkflowError(f"invalid configuration: {err}") from None
    found = {}
    for name, points in plan.items():
        found[name] = []
        for point in points:
            try:
                settings = qmdipole.sweeps.point_config(config, name, point)
                check_config(settings, SCHEMA)
            except (qmdipole.sweeps.SweepError, WorkflowError) as err:
                reason = str(err).removeprefix("invalid configuration: ")
                raise WorkflowError(
                    f"invalid configuration: sweep {name}, point {point.id}: {reason}"
                ) from None
            found[name].append((point, settings))
    return found


def sweep_point_files(wildcards):
    """The reductions of every point of sweep ``wildcards.sweep``, in the sweep's order."""
    points = SWEEPS[wildcards.sweep]
    return {
        section: [in_run(f"results/reductions/{section}.nc", s) for _, s in points]
        for section in ("quadrupolar_current", "ndd_spectrum")
    }


def sweep_settings(wildcards):
    """What sweep ``wildcards.sweep`` aggregates: its entry, and each point's values, model and eta."""
    return {
        "sweep": config["sweeps"][wildcards.sweep],
        "points": [
            {"id": p.id, "values": p.values, "model": s["model"], "eta": s["ndd"]["eta"]}
            for p, s in SWEEPS[wildcards.sweep]
        ],
    }


def sweep_outputs(names):
    """The dataset and the figure of each sweep of ``names``."""
    return [
        path
        for name in names
        for path in [
            in_run(f"results/sweeps/{name}/sweep.nc"),
            *multiext(in_run(f"results/sweeps/{name}/features"), ".pdf", ".png"),
        ]
    ]


def needs(config):
    """What the shared grid (GRID_NEEDS) and gamma's own grid (GAMMA_NEEDS) need, as rule params."""
    return tuple(n.as_dict() for n in qmdipole.config.grid_needs_of(config))


def valley_model(valley):
    """The ``model:`` section reduced to valley ``valley`` (1-based): a rule's params then change
    only when the global keys or this valley's entry change."""
    return qmdipole.models.valley_section(config["model"], int(valley) - 1)


COMPILATION = []  # the process compiling the kernels (onstart)


def start_compilation():
    """Compile the numba kernels in a process of their own (qmdipole.kernels.compile_in_background)."""
    import qmdipole.kernels

    COMPILATION.append(qmdipole.kernels.compile_in_background(".snakemake/qmdipole"))


def stop_compilation():
    """Stop the kernels' compilation if it still runs (a workflow that failed early)."""
    for process in COMPILATION:
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait()


def code(*modules, data=()):
    """Content digest of the package modules ``modules`` (with what they import, I/O left out) and
    of package data files: as a rule param it re-runs the rule when, and only when, that code
    changes (not when the package is re-installed or moves). Once per process (the sweeps'
    points are instances of this workflow)."""
    return qmdipole.sweeps.code_digest(*modules, data=tuple(data))


def model_code():
    """Content digest of a kind: python model's own source (its module and what that imports from
    the run directory), or of a kind: wannier90 model's files; built-in models are covered by
    code("models")."""
    model = config["model"]
    if model.get("kind") == "wannier90":
        try:
            return qmdipole.models.wannier90_digests(model)
        except qmdipole.models.ModelError as err:
            raise WorkflowError(f"invalid configuration: {err}") from None
    if model.get("kind") != "python":
        return "built-in"
    try:
        return qmdipole.provenance.user_code_digest(model["factory"])
    except qmdipole.provenance.CodeError as err:
        raise WorkflowError(f"invalid configuration: {err}") from None


wildcard_constraints:
    valley=r"[1-9]\d*",
