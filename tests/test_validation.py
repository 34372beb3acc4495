"""The γ_xxz convergence study (qmdipole.validation) on small configurations.

For the paper's model the reference is the independent semi-analytic route, so the errors must
fall with the grid (the linear tetrahedron method is O(h²): a factor ~4 per doubling of the node
counts); for the lattice kind the reference is the finest grid of the sequence.
"""

from __future__ import annotations

import copy
import csv
import io
from pathlib import Path

import numpy as np
import pytest
import yaml

from qmdipole import analytic, validation
from qmdipole.models import build_model, valley_parameters

from checks import config_grid, config_needs

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())


def small_config(model=None, n=(16, 4, 32)):
    config = copy.deepcopy(CONFIG)
    config["model"].update(model or {})
    config["kgrid"].update(n=list(n), points_per_eta=0.0)
    config["quadrupolar_current"].update(mu={"start": -3.0, "stop": 3.0, "num": 31}, temperatures=[])
    config["ndd"].update(omega={"start": 0.5, "stop": 5.0, "num": 10}, eta=0.2, transition_cutoff=8.0)
    return config


def _mu(config):
    return np.linspace(**config["quadrupolar_current"]["mu"])


def study(config, scales):
    """The convergence study of ``config``'s γ, as the pipeline's rule runs it."""
    model = config["model"]
    models = [build_model(model, i) for i in range(len(model["valleys"]))]
    return validation.gamma_convergence(models, model["kind"], config_grid(config),
                                        config_needs(config, gamma=True), _mu(config), scales=scales)


@pytest.fixture(scope="module")
def valley_study():
    config = small_config()
    return config, study(config, scales=(0.5, 1.0, 2.0, 4.0))


def test_valley_errors_decrease_against_the_analytic_reference(valley_study):
    config, ds = valley_study
    errors = ds["max_error"].values
    assert np.all(np.isfinite(errors)) and np.all(errors > 0)
    assert "analytic" in ds.attrs["reference"], ds.attrs["reference"]
    assert "analytic" in ds["gamma_xxz_reference"].attrs["long_name"]
    # monotone decrease (also between the two finest grids), and a clear overall rate: h falls 8x
    # from the coarsest to the finest grid (O(h²) would give 64x; the pre-asymptotic rate near
    # the band edges is lower, measured ~38x)
    assert np.all(np.diff(errors) < 0), f"errors {errors} do not decrease with the grid"
    assert errors[0] / errors[-1] > 16, f"errors {errors}: far slower than O(h^2)"
    assert errors[-1] < 1e-2, f"finest error {errors[-1]:.2e}"
    # the points are counted over all valleys and grow with the scale (2 scaled axes: x4 per x2)
    sizes = ds["n_points"].values
    np.testing.assert_allclose(sizes[1:] / sizes[:-1], 4.0, rtol=0.1)
    np.testing.assert_array_equal(ds["scale"].values, [0.5, 1.0, 2.0, 4.0])


def test_valley_reference_is_the_analytic_two_valley_sum(valley_study):
    config, ds = valley_study
    valleys = [valley_parameters(config["model"], v) for v in range(2)]
    expected = analytic.valley_sum(analytic.gamma_xxz, _mu(config), valleys)
    np.testing.assert_allclose(ds["gamma_xxz_reference"].values, expected, rtol=1e-12, atol=1e-15)
    # and the recorded error is the max deviation of each curve from it, relative to its maximum
    recomputed = (np.abs(ds["gamma_xxz"].values - expected).max(axis=1) / np.abs(expected).max())
    np.testing.assert_allclose(ds["max_error"].values, recomputed, rtol=1e-12)


def test_convergence_table_has_one_row_per_grid(valley_study):
    _, ds = valley_study
    text = validation.convergence_table(ds)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == ds.sizes["n_points"] == 4
    assert list(rows[0]) == ["scale", "n_points", "max_relative_error"]
    for row, scale, n, err in zip(rows, ds["scale"].values, ds["n_points"].values,
                                  ds["max_error"].values):
        assert float(row["scale"]) == pytest.approx(scale)
        assert int(row["n_points"]) == n
        assert float(row["max_relative_error"]) == pytest.approx(err, rel=1e-6)


def test_lattice_study_uses_the_finest_grid_as_reference():
    config = small_config(model={"kind": "lattice", "lattice_constant": 1.0}, n=(8, 8, 12))
    ds = study(config, scales=(1.0, 2.0, 4.0))
    errors = ds["max_error"].values
    assert "finest" in ds.attrs["reference"]
    np.testing.assert_array_equal(ds["gamma_xxz_reference"].values, ds["gamma_xxz"].values[-1])
    assert np.isnan(errors[-1]) and np.all(np.isfinite(errors[:-1]))
    assert errors[0] > errors[1] > 0, f"lattice errors {errors} do not decrease"
    # three axes scaled on a Brillouin-zone grid: x8 points per x2
    sizes = ds["n_points"].values
    np.testing.assert_allclose(sizes[1:] / sizes[:-1], 8.0, rtol=0.1)
    rows = list(csv.DictReader(io.StringIO(validation.convergence_table(ds))))
    assert len(rows) == 3 and rows[-1]["max_relative_error"] == "nan"
