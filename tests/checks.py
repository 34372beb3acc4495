"""Assertions and helpers shared by several test modules."""

import contextlib
import subprocess
import sys

import numpy as np

from qmdipole import config as qconfig
from qmdipole import tabulate
from qmdipole.models import build_model
from qmdipole.settings import Settings


def assert_gradient_matches_finite_differences(model, k, h=1e-6, atol=1e-8):
    """∂H/∂k_i of ``model`` at k-points ``k`` (3, N) equals central differences of H."""
    for i in range(3):
        kp, km = k.copy(), k.copy()
        kp[i] += h
        km[i] -= h
        fd = (model.hamiltonian(*kp) - model.hamiltonian(*km)) / (2 * h)
        np.testing.assert_allclose(model.hamiltonian_gradient(*k)[i], fd, atol=atol)


def config_needs(config, gamma=False):
    """What the shared k-grid of ``config`` needs (``gamma``: γ's own grid), as the pipeline
    computes it."""
    return qconfig.grid_needs_of(config)[bool(gamma)]


def config_grid(config):
    """The typed ``kgrid:`` settings of ``config``."""
    return Settings.from_config(config).kgrid


def config_tables(config, needs=None):
    """``[(model, grid, table)]`` per valley of ``config``, built in memory as the pipeline builds
    them (``needs``: the shared grid's by default)."""
    model = config["model"]
    models = [build_model(model, i) for i in range(len(model["valleys"]))]
    return tabulate.valley_tables(models, model.get("kind", "valley"), config_grid(config),
                                  needs or config_needs(config))


def assert_refused_at_dry_run(workspace, override, key):
    """``snakemake -n`` with the config ``override`` fails with a message naming ``key``."""
    path = workspace.write_config("bad.yaml", override)
    proc = workspace.snakemake("--dry-run", "--configfile", path, check=False)
    assert proc.returncode != 0, f"accepted {override}:\n{proc.output[-2000:]}"
    assert "invalid configuration" in proc.output, proc.output[-3000:]
    assert key in proc.output, f"the message does not name {key!r}:\n{proc.output[-3000:]}"


@contextlib.contextmanager
def serving(script, env):
    """Run ``python -c script`` (a server that prints its address, then serves until its standard
    input closes); yield the address; stop it."""
    server = subprocess.Popen([sys.executable, "-c", script], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        address = server.stdout.readline().strip()
        assert address.startswith("tcp://127.0.0.1:"), address
        yield address
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
