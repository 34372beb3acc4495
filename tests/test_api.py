"""The public API: the pipeline's numbers from Python, typed settings, the gradient fallback."""

from __future__ import annotations

import copy
import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
import yaml

import qmdipole as qd
from qmdipole.geometry import band_geometry
from qmdipole.models import ModelError, finite_difference_gradient
from qmdipole.settings import SettingsError

from conftest import REPO

FIG4 = {"kind": "valley", "mass": 1.9, "valleys": [{"delta": 1.0, "vprime": 1.0, "tau": 1},
                                                   {"delta": 2.0, "vprime": -1.0, "tau": -1}]}


def merged(base: dict, override: dict) -> dict:
    """``override`` over ``base`` key by key (lists replaced whole), as Snakemake merges configs."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


def read_config(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


# --------------------------------------------------------------------------------------------
# the gradient fallback

@pytest.mark.parametrize("model", [
    qd.ValleyModel(delta=1.0, vprime=0.8, tau=-1, v=1.2, mass=1.9),
    qd.LatticeValleyModel(delta=0.7, vprime=-0.5, tau=1, v=0.9, mass=1.4, lattice_constant=1.3),
], ids=["valley", "lattice"])
def test_finite_difference_gradient_matches_the_exact_one(model):
    k = np.random.default_rng(1).uniform(-3, 3, (3, 7, 5))
    exact = model.hamiltonian_gradient(*k)
    fd = finite_difference_gradient(model.hamiltonian, *k)
    assert fd.shape == exact.shape == (3, 7, 5, 2, 2)
    assert np.abs(fd - exact).max() <= 1e-8 * np.abs(exact).max()
    # the stated error: round-off ~1.5 eps |H| / h; a 10x larger step trades it for h^4 truncation
    assert np.abs(fd - exact).max() <= 1e-11 * np.abs(model.hamiltonian(*k)).max()


def test_python_model_without_gradient_gives_the_built_in_geometry():
    reference = qd.LatticeValleyModel(delta=0.7, vprime=-0.5, tau=1, mass=1.4)
    model = qd.PythonModel(reference.hamiltonian, name="mine", parameters={"delta": 0.7})
    assert model.n_bands == 2 and model.describe()["gradient"].startswith("finite_difference")
    kx, ky, kz = np.random.default_rng(2).uniform(-2, 2, (3, 50))
    ours = band_geometry(model, kx, ky, kz, method="sum_over_states")
    exact = band_geometry(reference, kx, ky, kz, method="closed_form")
    for name in ("energy", "velocity", "quantum_metric", "berry_curvature"):
        scale = np.abs(exact[name]).max()
        assert np.abs(ours[name] - exact[name]).max() <= 1e-8 * scale, name
    given = qd.PythonModel(reference.hamiltonian, reference.hamiltonian_gradient)
    assert np.array_equal(given.hamiltonian_gradient(kx, ky, kz),
                          reference.hamiltonian_gradient(kx, ky, kz))


def test_python_model_refuses_bad_input():
    with pytest.raises(ModelError, match="callable"):
        qd.PythonModel("not a function")
    with pytest.raises(ModelError, match="step"):
        qd.PythonModel(lambda kx, ky, kz: np.zeros(np.shape(kx) + (2, 2)), step=0)
    with pytest.raises(TypeError, match="PythonModel"):
        qd.bands(object())


# --------------------------------------------------------------------------------------------
# settings

def test_settings_defaults_are_those_of_config_yaml():
    assert qd.Settings.from_config(read_config("config.yaml")) == qd.Settings()


def test_settings_from_config_reads_every_section_and_names_unknown_keys():
    settings = qd.Settings.from_config(merged(read_config("config.yaml"), read_config("ci.yaml")))
    assert settings.kgrid.n == (24, 4, 48) and settings.kgrid.points_per_eta == 0
    assert settings.gamma.mu == qd.Sampling(-3.0, 3.0, 25) and settings.gamma.rtol == 0.5
    assert settings.ndd.eta == 0.2 and settings.ndd.kubo and settings.ndd.kubo_dq == 1e-3
    assert settings.qmd_field.kx_max == math.inf and settings.band_structure.n == 61
    with pytest.raises(SettingsError, match=r"ndd: unknown key\(s\) \['etaa'\]"):
        qd.Settings.from_config({"ndd": {"etaa": 0.1}})
    with pytest.raises(SettingsError, match="stop > start"):
        qd.Sampling(1.0, 0.0, 5)


# --------------------------------------------------------------------------------------------
# the pipeline's numbers

@pytest.fixture(scope="module")
def pipeline(module_workspace):
    """The CI configuration's reductions, made by the pipeline."""
    targets = [f"results/reductions/{name}.nc" for name in
               ("quadrupolar_current", "ndd_spectrum", "band_structure", "qmd_field")]
    module_workspace.snakemake(*targets, "--cores", "2", "--configfile", "config/ci.yaml")
    return module_workspace.root / "results" / "reductions"


@pytest.fixture(scope="module")
def computed():
    """The same reductions from :func:`qmdipole.compute` (config.yaml with ci.yaml over it)."""
    return qd.compute(merged(read_config("config.yaml"), read_config("ci.yaml")))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quadrupolar_current", "ndd_spectrum", "band_structure",
                                  "qmd_field"])
def test_api_equals_the_pipeline_files(pipeline, computed, name):
    ours = computed[name]
    with xr.open_dataset(pipeline / f"{name}.nc") as theirs:
        assert set(ours.data_vars) == set(theirs.data_vars)
        assert set(ours.coords) == set(theirs.coords)
        for var in ours.variables:
            a, b = ours[var], theirs[var]
            assert a.dims == b.dims, var
            assert a.attrs.get("units") == b.attrs.get("units"), var
            if np.issubdtype(a.dtype, np.number):
                scale = max(float(np.abs(b).max()), 1e-300)
                assert float(np.abs(a - b).max()) <= 1e-12 * scale, var
            else:
                assert np.array_equal(a.values, b.values), var
        for attr in ("accuracy_rtol", "eta", "transition_cutoff", "high_energy_tail_end"):
            if attr in theirs.attrs:
                assert ours.attrs[attr] == theirs.attrs[attr], attr


def test_keywords_override_settings_and_models_can_be_objects():
    """A list of model objects with keyword settings equals the config route with those settings."""
    settings = qd.Settings.from_config(merged(read_config("config.yaml"), read_config("ci.yaml")))
    models = [qd.ValleyModel(delta=1.0, vprime=1.0, tau=1, mass=1.9),
              qd.ValleyModel(delta=2.0, vprime=-1.0, tau=-1, mass=1.9)]
    omega = settings.ndd.omega.values
    spec = qd.ndd_spectrum(models, omega=omega, eta=0.2, kubo=False, settings=settings)
    reference = qd.ndd_spectrum(FIG4, settings=dataclasses.replace(
        settings, ndd=dataclasses.replace(settings.ndd, kubo=False)))
    assert "re_delta_n_kubo" not in spec
    xr.testing.assert_identical(spec, reference)
    with pytest.raises(ValueError, match="qmd_field.valley is 3"):
        qd.dipole_field(models, valley=3, n=5, settings=settings)


def test_gamma_matches_the_semi_analytic_route():
    """γ_xxz of Eq. 14 from the API against qmdipole.analytic, within the API's own estimate."""
    from qmdipole import analytic
    from qmdipole.models import valley_parameters

    mu = np.linspace(-3.0, 3.0, 13)
    gamma = qd.quadrupolar_current(FIG4, mu=mu, temperatures=[], rtol=0.05,
                                   kgrid=qd.GridSettings(n=(40, 4, 80)))
    reference = analytic.valley_sum(analytic.gamma_xxz, mu,
                                    [valley_parameters(FIG4, i) for i in range(2)])
    error = np.abs(gamma["gamma_xxz"].values - reference).max() / np.abs(reference).max()
    assert error <= gamma.attrs["max_relative_error_estimate"]  # measured: 0.004 vs 0.043
    assert gamma.attrs["meets_accuracy_rtol"] == "true"


def test_plot_draws_each_result(tmp_path):
    models = qd.models_from_config(FIG4)
    bands = qd.bands(models, n=41)
    pdf, png = qd.plot(bands, tmp_path / "fig2")
    assert pdf.stat().st_size > 1000 and png.stat().st_size > 1000
    fig = qd.plot(qd.dipole_field(models, n=9, n_kx=24))
    assert fig.axes
    with pytest.raises(ValueError, match="not a result"):
        qd.plot(xr.Dataset({"x": ("a", [1.0])}))


@pytest.mark.slow
def test_the_python_page_runs(tmp_path, monkeypatch):
    """Every ```python block of docs/python.md, in order, in one namespace (as a reader runs them)."""
    pytest.importorskip("pythtb")
    import re

    page = (REPO / "docs" / "python.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in blocks:
        exec(compile(block, "docs/python.md", "exec"), namespace)
    for name in ("fig2", "fig3", "fig4a", "fig4b"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    # the PythTB model is the built-in lattice model, so its gamma is too
    reference = qd.quadrupolar_current(qd.LatticeValleyModel(delta=1.0, vprime=1.0, mass=1.9),
                                       mu=qd.Sampling(-2, 2, 21), temperatures=[], rtol=0.05,
                                       kgrid=qd.GridSettings(n=(32, 32, 32)))
    xr.testing.assert_allclose(namespace["gamma_tb"]["gamma_xxz"], reference["gamma_xxz"],
                               rtol=1e-9, atol=1e-12)
    assert namespace["from_file"].n_bands == 2


def test_the_library_imports_without_snakemake():
    """The core library is usable without the workflow extra (Snakemake, its SLURM plugin)."""
    code = ("import sys; sys.modules['snakemake'] = None\n"  # any import of it now fails
            "import pkgutil, importlib, qmdipole\n"
            "for m in pkgutil.iter_modules(qmdipole.__path__):\n"
            "    importlib.import_module('qmdipole.' + m.name)\n"
            "qmdipole.quadrupolar_current\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_ndd_tensor_holds_the_spectrum_of_the_papers_geometry():
    """qmdipole.ndd_tensor of the lattice model: T_xxz is ndd_spectrum's Δn for q ∥ z, ê ∥ x on
    the same grid (no refinement), summed over valleys."""
    models = [qd.LatticeValleyModel(delta=1.0, vprime=1.0),
              qd.LatticeValleyModel(delta=2.0, vprime=-1.0, tau=-1)]
    grid = qd.GridSettings(n=(8, 8, 10), points_per_eta=0.0)
    settings = qd.Settings(ndd=dataclasses.replace(qd.NDDSettings(), rtol_delta_n=1e9,
                                                   rtol_avg_qmd=1e9, kubo=False))
    omega = np.linspace(0.5, 6.0, 23)
    tensor = qd.ndd_tensor(models, omega, eta=0.3, kgrid=grid, settings=settings)
    spec = qd.ndd_spectrum(models, omega, eta=0.3, kgrid=grid, settings=settings)
    for part in ("re", "im"):
        found = tensor[f"{part}_delta_n_tensor"].sel(dir_a="x", dir_b="x", dir_c="z").values
        np.testing.assert_allclose(found, spec[f"{part}_delta_n"].values, rtol=0,
                                   atol=1e-12 * np.abs(spec[f"{part}_delta_n"].values).max())
    assert tensor["re_delta_n_tensor_valley"].sizes["valley"] == 2
