"""Tests of qmdipole.models: Eq. 14, its lattice regularisation, the config factory, k-windows."""

from __future__ import annotations

import sys

import numpy as np
from checks import assert_gradient_matches_finite_differences
import pytest

from qmdipole.models import (
    PAULI,
    LatticeValleyModel,
    Model,
    ModelError,
    TwoBandModel,
    ValleyModel,
    build_model,
    valley_parameters,
)

FIG4 = {
    "kind": "valley",
    "v": 1.0,
    "mass": 1.9,
    "valleys": [{"delta": 1.0, "vprime": 1.0, "tau": 1}, {"delta": 2.0, "vprime": -1.0, "tau": -1}],
}


def eq14_hamiltonian(kx, ky, kz, delta, vprime, tau, v, mass):
    """Eq. (14) written out here, independently of qmdipole.models."""
    eye = np.eye(2)
    return ((vprime * kz)[..., None, None] * eye + (v * tau * kx)[..., None, None] * PAULI[0]
            + (v * ky)[..., None, None] * PAULI[1]
            + (delta + kz**2 / (2 * mass))[..., None, None] * PAULI[2])


PARAMS = dict(delta=0.8, vprime=-0.6, tau=-1, v=1.3, mass=1.7)


# ------------------------------------------------------------------------------------------
# the models are what docs/conventions.md says
# ------------------------------------------------------------------------------------------

def test_valley_model_is_eq14_and_gradient_is_consistent():
    model = ValleyModel(**PARAMS)
    k = np.random.default_rng(0).normal(size=(3, 100))
    np.testing.assert_allclose(model.hamiltonian(*k), eq14_hamiltonian(*k, **PARAMS), atol=1e-14)
    for m in (model, LatticeValleyModel(**PARAMS, lattice_constant=0.7)):
        assert_gradient_matches_finite_differences(m, k)


def test_derivative_along_a_direction_is_the_projected_gradient():
    """hamiltonian_derivative(k, d) = Σ_i d_i ∂H/∂k_i: the two-band closed form (one matrix per
    k-point) and Model's projection, against the gradient, for random directions (a model with
    every ∂_i d_a non-zero included: a transposed ∂d would show)."""
    from test_geometry import DenseTwoBand

    rng = np.random.default_rng(3)
    k = rng.uniform(-2, 2, (3, 20))
    lattice = LatticeValleyModel(delta=1.0, vprime=0.7, tau=-1, mass=1.3, lattice_constant=0.9)
    for model in (ValleyModel(delta=1.0, vprime=-0.8, tau=1, mass=1.9), lattice, DenseTwoBand()):
        for direction in (np.array([0.0, 0.0, 1.0]), rng.normal(size=3)):
            expected = np.tensordot(direction, model.hamiltonian_gradient(*k), axes=(0, 0))
            for found in (model.hamiltonian_derivative(*k, direction),
                          Model.hamiltonian_derivative(model, *k, direction)):
                assert found.shape == k.shape[1:] + (2, 2)
                np.testing.assert_allclose(found, expected, rtol=0, atol=1e-13)


def test_lattice_model_is_the_written_regularisation():
    a = 0.7
    model = LatticeValleyModel(**PARAMS, lattice_constant=a)
    kx, ky, kz = np.random.default_rng(1).uniform(-np.pi / a, np.pi / a, size=(3, 50))
    p = PARAMS
    expected = (
        (p["vprime"] * np.sin(kz * a) / a)[:, None, None] * np.eye(2)
        + (p["v"] * p["tau"] * np.sin(kx * a) / a)[:, None, None] * PAULI[0]
        + (p["v"] * np.sin(ky * a) / a)[:, None, None] * PAULI[1]
        + (p["delta"] + (1 - np.cos(kz * a)) / (p["mass"] * a * a))[:, None, None] * PAULI[2]
    )
    np.testing.assert_allclose(model.hamiltonian(kx, ky, kz), expected, atol=1e-14)
    # periodic on the Brillouin zone
    np.testing.assert_allclose(model.hamiltonian(kx + 2 * np.pi / a, ky, kz - 2 * np.pi / a),
                               expected, atol=1e-12)


def _lattice_deviation(a, scale, direction):
    k = scale * direction[:, None]
    lattice = LatticeValleyModel(**PARAMS, lattice_constant=a).hamiltonian(*k)
    return np.abs(lattice - eq14_hamiltonian(*k, **PARAMS)).max()


def test_lattice_reduces_to_eq14_near_the_valley():
    """H_lattice − H_Eq14 = O(a² k³): slope 3 in k at fixed a, slope 2 in a at fixed k."""
    direction = np.array([0.6, -0.5, 0.8])
    ks = np.array([0.04, 0.02, 0.01, 0.005])
    dev_k = np.array([_lattice_deviation(1.0, s, direction) for s in ks])
    slopes_k = np.diff(np.log(dev_k)) / np.diff(np.log(ks))
    np.testing.assert_allclose(slopes_k, 3.0, atol=0.05)

    a_values = np.array([0.4, 0.2, 0.1, 0.05])
    dev_a = np.array([_lattice_deviation(a, 0.5, direction) for a in a_values])
    slopes_a = np.diff(np.log(dev_a)) / np.diff(np.log(a_values))
    np.testing.assert_allclose(slopes_a, 2.0, atol=0.05)
    # the prefactor: the leading term is (v a² k_x³/6) etc.; at a = 0.05, k = 0.5 the deviation
    # is bounded by (a²/6)(v + |v'|) |k|³ + a² k_z⁴/(24 m) (Taylor remainders)
    k = 0.5 * direction
    bound = 0.05**2 / 6 * (PARAMS["v"] * np.abs(k[:2]).max() ** 3 + abs(PARAMS["vprime"]) * abs(k[2]) ** 3
                           ) * 2 + 0.05**2 * k[2] ** 4 / (24 * PARAMS["mass"])
    assert dev_a[-1] <= bound


# ------------------------------------------------------------------------------------------
# build_model
# ------------------------------------------------------------------------------------------

def test_build_valley_model_from_config():
    config = {**FIG4, "valleys": [*FIG4["valleys"], {"delta": 3.0, "vprime": 0.5, "tau": 1,
                                                      "mass": 0.4, "v": 2.0}]}
    m1, m2, m3 = (build_model(config, i) for i in range(3))
    assert isinstance(m1, ValleyModel) and isinstance(m2, ValleyModel)
    assert (m1.delta, m1.vprime, m1.tau, m1.v, m1.mass) == (1.0, 1.0, 1, 1.0, 1.9)
    assert (m2.delta, m2.vprime, m2.tau, m2.v, m2.mass) == (2.0, -1.0, -1, 1.0, 1.9)
    assert (m3.mass, m3.v) == (0.4, 2.0)  # a valley entry overrides the global keys
    # kind defaults to valley
    config.pop("kind")
    assert isinstance(build_model(config, 0), ValleyModel)
    with pytest.raises(ModelError, match="model.valleys"):
        build_model(FIG4, 2)
    assert valley_parameters(FIG4, 1) == {"v": 1.0, "mass": 1.9, "delta": 2.0, "vprime": -1.0,
                                          "tau": -1}


def test_build_lattice_model_from_config():
    model = build_model({**FIG4, "kind": "lattice", "lattice_constant": 0.5}, 1)
    assert isinstance(model, LatticeValleyModel)
    assert (model.delta, model.vprime, model.tau, model.mass, model.lattice_constant) == (
        2.0, -1.0, -1, 1.9, 0.5)
    assert build_model({**FIG4, "kind": "lattice"}, 0).lattice_constant == 1.0
    with pytest.raises(ModelError, match="lattice_constant"):
        build_model({**FIG4, "kind": "lattice", "lattice_constant": 0.0}, 0)


USER_MODULE = '''
import numpy as np
from qmdipole.models import TwoBandModel

class Tilted(TwoBandModel):
    name = "user_tilted"

    def __init__(self, delta, tilt, v, mass):
        self.delta, self.tilt, self.v, self.mass = delta, tilt, v, mass

    def d_vector(self, kx, ky, kz):
        kx, ky, kz = np.broadcast_arrays(*map(np.asarray, (kx, ky, kz)))
        return self.tilt * kz, np.stack([self.v * kx, self.v * ky, self.delta + kz**2 / self.mass])

    def d_gradient(self, kx, ky, kz):
        kx, ky, kz = np.broadcast_arrays(*map(np.asarray, (kx, ky, kz)))
        g = np.zeros((3, 3) + kx.shape)
        g[0, 0] = g[1, 1] = self.v
        g[2, 2] = 2 * kz / self.mass
        e = np.zeros((3,) + kx.shape)
        e[2] = self.tilt
        return e, g

def make(*, delta, tilt=0.0, v=1.0, mass=1.0, **unused):
    return Tilted(delta, tilt, v, mass)

def not_a_model(**kwargs):
    return object()

class NoBands:
    def hamiltonian(self, kx, ky, kz): ...
    def hamiltonian_gradient(self, kx, ky, kz): ...

def no_bands(**kwargs):
    return NoBands()
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module ``qmd_test_user_model`` on sys.path with a model factory."""
    name = "qmd_test_user_model"
    (tmp_path / f"{name}.py").write_text(USER_MODULE)
    (tmp_path / "qmd_test_broken_model.py").write_text("def make(:\n    pass\n")
    (tmp_path / "qmd_test_raising_model.py").write_text("raise RuntimeError('no licence')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for mod in (name, "qmd_test_broken_model", "qmd_test_raising_model"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    return name


def test_build_python_model_from_config(user_module):
    config = {"kind": "python", "factory": f"{user_module}:make", "options": {"tilt": 0.3},
              "v": 1.5, "mass": 2.0,
              "valleys": [{"delta": 1.0}, {"delta": 2.0, "tilt": -0.3, "mass": 0.5}]}
    m1, m2 = build_model(config, 0), build_model(config, 1)
    assert isinstance(m1, TwoBandModel) and m1.name == "user_tilted"
    assert (m1.delta, m1.tilt, m1.v, m1.mass) == (1.0, 0.3, 1.5, 2.0)
    assert (m2.delta, m2.tilt, m2.v, m2.mass) == (2.0, -0.3, 1.5, 0.5)  # entry over options
    h = m1.hamiltonian(np.array([0.0]), np.array([0.0]), np.array([1.0]))
    np.testing.assert_allclose(h[0], 0.3 * np.eye(2) + 1.5 * PAULI[2])


def test_build_python_model_shipped_example():
    """The documented example (examples/user_model.py) loads through the same path."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if not (root / "examples" / "user_model.py").is_file():
        pytest.skip("no examples/user_model.py")
    sys.path.insert(0, str(root))
    try:
        model = build_model({"kind": "python", "factory": "examples.user_model:tilted_dirac",
                             "valleys": [{"delta": 1.0, "tilt": [0.0, 0.0, 0.5]}]}, 0)
    finally:
        sys.path.remove(str(root))
    assert model.n_bands == 2
    assert model.hamiltonian(np.zeros(3), np.zeros(3), np.zeros(3)).shape == (3, 2, 2)


@pytest.mark.parametrize("factory,match", [
    (None, "model.factory"),
    ("no_colon_here", "model.factory"),
    ("qmd_no_such_module_xyz:make", "model.factory.*qmd_no_such_module_xyz"),
    ("{user}:no_such_function", "model.factory.*no_such_function"),
    ("{user}:not_a_model", "model.factory.*hamiltonian"),
    ("{user}:no_bands", "model.factory.*n_bands"),
])
def test_python_model_errors(user_module, factory, match):
    if factory is not None:
        factory = factory.format(user=user_module)
    config = {"kind": "python", "factory": factory, "valleys": [{"delta": 1.0}]}
    with pytest.raises(ModelError, match=match):
        build_model(config, 0)


@pytest.mark.parametrize("module", ["qmd_test_broken_model", "qmd_test_raising_model"])
def test_python_model_unimportable_module(user_module, module):
    """A module that fails while importing (SyntaxError, an exception at import time)."""
    config = {"kind": "python", "factory": f"{module}:make", "valleys": [{"delta": 1.0}]}
    with pytest.raises(ModelError, match="model.factory"):
        build_model(config, 0)


def test_unknown_kind():
    with pytest.raises(ModelError, match="model.kind.*'tight_binding'"):
        build_model({**FIG4, "kind": "tight_binding"}, 0)


@pytest.mark.parametrize("kind", ["valley", "lattice"])
@pytest.mark.parametrize("tau", [0, 2, -2, 0.5])
def test_tau_must_be_plus_or_minus_one(kind, tau):
    config = {**FIG4, "kind": kind, "valleys": [{"delta": 1.0, "vprime": 1.0, "tau": tau}]}
    with pytest.raises(ModelError, match="tau"):
        build_model(config, 0)


@pytest.mark.parametrize("kind", ["valley", "lattice"])
@pytest.mark.parametrize("mass", [0.0, -1.9, float("nan")])
def test_mass_must_be_positive(kind, mass):
    with pytest.raises(ModelError, match="mass"):
        build_model({**FIG4, "kind": kind, "mass": mass}, 0)
    # and the per-valley override is checked too
    config = {**FIG4, "kind": kind,
              "valleys": [{"delta": 1.0, "vprime": 1.0, "tau": 1, "mass": mass}]}
    with pytest.raises(ModelError, match="mass"):
        build_model(config, 0)


def test_v_must_be_positive():
    with pytest.raises(ModelError, match=r"\bv\b"):
        build_model({**FIG4, "v": 0.0}, 0)


# ------------------------------------------------------------------------------------------
# ValleyModel.k_window
# ------------------------------------------------------------------------------------------

def _needed(model, k, energy_range, transition_max):
    """Is any state at k needed: ε± in the range, or the transition 2|d| ≤ transition_max?"""
    e0, d = model.d_vector(*k)
    e = np.sqrt((d * d).sum(axis=0))
    lo, hi = energy_range
    in_range = lambda x: (x >= lo) & (x <= hi)  # noqa: E731
    return in_range(e0 - e) | in_range(e0 + e) | (2 * e <= transition_max)


WINDOW_CASES = [
    (dict(delta=1.0, vprime=1.0, tau=1, mass=1.9), (-4.0, 4.0), 16.0),     # Fig. 4 valley 1
    (dict(delta=2.0, vprime=-1.0, tau=-1, mass=1.9), (-4.0, 4.0), 16.0),   # Fig. 4 valley 2
    (dict(delta=1.0, vprime=1.0, tau=1, mass=1.9), (-0.5, 0.5), 3.0),
    (dict(delta=2.0, vprime=-1.0, tau=-1, mass=1.9), (2.5, 3.0), 0.0),     # one-sided range
    (dict(delta=1.0, vprime=3.0, tau=1, mass=0.5, v=2.0), (-4.0, -3.0), 0.0),
    (dict(delta=-1.0, vprime=0.4, tau=1, mass=1.0), (-0.5, 0.5), 0.0),    # band inversion
    (dict(delta=-0.5, vprime=-0.3, tau=-1, mass=2.0), (0.2, 0.6), 1.0),
    (dict(delta=1.0, vprime=0.0, tau=1, mass=1.0), (-0.5, 0.5), 0.0),     # nothing in range
]


def valley_window(params, energy_range, transition_max):
    """The valley model of ``params`` and its k-window (ρ_max, k_z min, k_z max)."""
    model = ValleyModel(**params)
    return model, model.k_window(energy_range, transition_max)


@pytest.mark.parametrize("params,energy_range,transition_max", WINDOW_CASES)
def test_k_window_contains_every_needed_state(params, energy_range, transition_max):
    model, (rho_max, kz_min, kz_max) = valley_window(params, energy_range, transition_max)
    assert rho_max >= 0 and kz_min <= kz_max
    rng = np.random.default_rng(2)
    n = 400_000
    extent = max(rho_max, kz_max - kz_min, 1.0)
    rho = rng.uniform(0, rho_max + 2 * extent, n)
    kz = rng.uniform(kz_min - 2 * extent, kz_max + 2 * extent, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    outside = (rho > rho_max) | (kz < kz_min) | (kz > kz_max)
    k = np.stack([rho * np.cos(phi), rho * np.sin(phi), kz])[:, outside]
    needed = _needed(model, k, energy_range, transition_max)
    assert not needed.any(), f"{needed.sum()} needed states outside, e.g. {k[:, needed][:, :3].T}"
    # the window is not vacuous: needed states exist inside it (except the empty case)
    inside = k.shape[1] < n
    if params["vprime"] != 0.0:
        ks = np.stack([rho * np.cos(phi), rho * np.sin(phi), kz])[:, ~outside]
        assert inside and _needed(model, ks, energy_range, transition_max).any()


@pytest.mark.parametrize("params,energy_range,transition_max", WINDOW_CASES[:4])
def test_k_window_is_tight(params, energy_range, transition_max):
    """Needed states reach close to each face of the cylinder (it is not just huge)."""
    model, (rho_max, kz_min, kz_max) = valley_window(params, energy_range, transition_max)
    rng = np.random.default_rng(3)
    n = 400_000
    rho, kz = rng.uniform(0, rho_max, n), rng.uniform(kz_min, kz_max, n)
    k = np.stack([rho, np.zeros(n), kz])
    needed = _needed(model, k, energy_range, transition_max)
    assert rho[needed].max() > 0.98 * rho_max
    assert kz[needed].max() > kz_max - 0.02 * (kz_max - kz_min)
    assert kz[needed].min() < kz_min + 0.02 * (kz_max - kz_min)


@pytest.mark.parametrize("params,energy_range,transition_max", WINDOW_CASES[:7])
def test_k_window_kz_faces_are_exact(params, energy_range, transition_max):
    """Needed states come arbitrarily close to the k_z faces but never cross them."""
    model, (rho_max, kz_min, kz_max) = valley_window(params, energy_range, transition_max)
    rng = np.random.default_rng(4)
    n = 100_000
    span = kz_max - kz_min
    kz = np.concatenate([kz_max + rng.uniform(0, 1e-3 * span, n),
                         kz_min - rng.uniform(0, 1e-3 * span, n)])
    rho = rng.uniform(0, 0.02 * rho_max, 2 * n)
    needed = _needed(model, np.stack([rho, np.zeros(2 * n), kz]), energy_range, transition_max)
    assert not needed.any()
    if params["delta"] > 0:  # exact faces: just inside them, on the axis, a state is needed
        inner = np.array([[0.0, 0.0], [0.0, 0.0], [kz_max - 1e-9 * span, kz_min + 1e-9 * span]])
        assert _needed(model, inner, energy_range, transition_max).all()


def test_k_window_inverted_mass():
    """Δ < 0 (band inversion): Weyl points at k = (0, 0, ±sqrt(2 m |Δ|)) are in the window."""
    model = ValleyModel(delta=-1.0, vprime=0.0, tau=1, mass=1.0)
    rho_max, kz_min, kz_max = model.k_window((-0.5, 0.5), 0.0)
    # at the Weyl points k = (0, 0, ±sqrt(2)) both bands are at energy 0
    assert kz_max >= np.sqrt(2) and kz_min <= -np.sqrt(2) and rho_max > 0.4
