"""Grids chosen for a stated accuracy (qmdipole.accuracy): gamma's pilot, prediction and checks."""

from __future__ import annotations

import dataclasses
import functools
import logging

import numpy as np
import pytest
import xarray as xr

from qmdipole import accuracy, analytic
from qmdipole.models import ValleyModel
from qmdipole.quadrupolar import gamma_from_table
from qmdipole.settings import GammaSettings, GridSettings, Sampling
from qmdipole.tabulate import tabulate

PARAMS = dict(delta=1.0, vprime=1.0, mass=1.9)
GAMMA = GammaSettings(mu=Sampling(-3.0, 3.0, 61), temperatures=(0.1,))
MU = GAMMA.mu_values
KGRID = GridSettings(n=(30, 4, 60))


def _gamma(rtol, kgrid=KGRID):
    """γ refined for ``rtol``: (grid, record, its result, γ of the grid's table computed anew)."""
    model = ValleyModel(**PARAMS)
    reduce = functools.partial(gamma_from_table, mu=MU, temperatures=[0.1])
    grid, record, ds = accuracy.refined_gamma(reduce, model, "valley", kgrid,
                                              accuracy.gamma_needs(GAMMA), rtol=rtol, threads=1)
    return grid, record, ds, reduce(tabulate(model, grid).compute())


def test_a_loose_tolerance_keeps_the_pilot_grid_and_its_result():
    grid, record, ds, again = _gamma(rtol=0.5)
    assert list(grid.shape) == list(KGRID.n) == record["pilot_shape"]
    assert record["pilot_estimate"] <= 0.5
    xr.testing.assert_identical(ds, again)  # the pilot's result is γ on that grid


def test_a_tight_tolerance_refines_and_is_met_and_honest():
    grid, record, ds, again = _gamma(rtol=0.01)
    assert record["pilot_estimate"] > 0.01  # the pilot alone would not do
    xr.testing.assert_identical(ds, again)  # the result is γ on the refined grid
    assert grid.shape[0] > KGRID.n[0] and grid.shape[1] == 4  # the azimuth stays exact
    found = accuracy.check_tolerance(ds, 0.01, "error", "test")  # met, or this raises
    assert max(found.values()) <= 0.01
    reference = analytic.gamma_xxz(MU, **PARAMS)
    assert (np.abs(ds["gamma_xxz"].values - reference) <= ds["gamma_xxz_error"].values).all()


def test_a_tolerance_beyond_max_points_is_refused_naming_the_keys():
    with pytest.raises(accuracy.AccuracyError, match=r"quadrupolar_current: .* estimated error "
                       r"of .* accuracy.rtol = 1e-06 .*kgrid.max_points = 1e\+05"):
        _gamma(rtol=1e-6, kgrid=dataclasses.replace(KGRID, max_points=100_000))


def _curve(error):
    mu = ("mu", np.linspace(-1, 1, 5), {"units": "Delta", "long_name": "mu"})
    attrs = {"units": "1", "long_name": "gamma"}
    return xr.Dataset({"gamma_xxz": ("mu", np.array([0.0, 1.0, 2.0, 1.0, 0.0]), attrs),
                       "gamma_xxz_error": ("mu", np.full(5, error), attrs)}, coords={"mu": mu})


def test_check_tolerance_errors_or_warns_on_a_miss(caplog):
    assert accuracy.check_tolerance(_curve(0.001), 1e-3, "error", "x") == {"gamma_xxz": 5e-4}
    with pytest.raises(accuracy.AccuracyError, match=r"valley 3: .*gamma_xxz 0.005.* misses "
                                                     r"accuracy.rtol = 0.001"):
        accuracy.check_tolerance(_curve(0.01), 1e-3, "error", "valley 3")
    with caplog.at_level(logging.WARNING):
        found = accuracy.check_tolerance(_curve(0.01), 1e-3, "warn", "valley 3")
    assert found == {"gamma_xxz": 0.005} and "misses accuracy.rtol" in caplog.text
    attrs = accuracy.attributes(found, 1e-3)
    assert attrs["meets_accuracy_rtol"] == "false" and attrs["max_relative_error_estimate"] == 0.005
