"""PythTB and TBmodels models through qmdipole.adapters: H(k) and ∂H/∂k against independent routes.

The lattice regularisation of Eq. 14 is written as hoppings in each library and compared with
the built-in :class:`~qmdipole.models.LatticeValleyModel` (closed-form H and ∂H); models with
orbitals away from the origin are compared with the library's own H(k) and a finite difference
of it.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from qmdipole.adapters import from_pythtb, from_tbmodels
from qmdipole.models import LatticeValleyModel, finite_difference_gradient

PARAMS = dict(delta=0.8, vprime=0.6, tau=-1, v=1.1, mass=1.3, lattice_constant=1.25)
SIGMA = {"x": np.array([[0, 1], [1, 0]], complex), "y": np.array([[0, -1j], [1j, 0]]),
         "z": np.diag([1.0, -1.0]).astype(complex)}


def lattice_valley_hoppings(delta, vprime, tau, v, mass, lattice_constant):
    """{R: H(R)} of LatticeValleyModel for R ≥ 0 (the conjugates H(−R) = H(R)† left out)."""
    a = lattice_constant
    return {
        (1, 0, 0): v * tau / (2j * a) * SIGMA["x"],
        (0, 1, 0): v / (2j * a) * SIGMA["y"],
        (0, 0, 1): vprime / (2j * a) * np.eye(2) - SIGMA["z"] / (2 * mass * a * a),
        (0, 0, 0): (delta + 1 / (mass * a * a)) * SIGMA["z"],
    }


def random_k(n=40, scale=4.0, seed=3):
    return np.random.default_rng(seed).uniform(-scale, scale, (3, n))


def assert_same_model(model, reference, k):
    h, ref = model.hamiltonian(*k), reference.hamiltonian(*k)
    assert np.abs(h - ref).max() <= 1e-12 * np.abs(ref).max()
    dh, dref = model.hamiltonian_gradient(*k), reference.hamiltonian_gradient(*k)
    assert dh.shape == dref.shape == (3, k.shape[1], 2, 2)
    assert np.abs(dh - dref).max() <= 1e-12 * np.abs(dref).max()


def pythtb_model(hoppings, lattice, orbitals, nspin=1):
    pythtb = pytest.importorskip("pythtb")
    tb = pythtb.tb_model(3, 3, lattice, orbitals, nspin=nspin)
    n = len(orbitals)
    onsite = hoppings[(0, 0, 0)]
    if nspin == 1:
        tb.set_onsite([onsite[i, i].real for i in range(n)])
        for i in range(n):
            for j in range(i + 1, n):
                if onsite[i, j]:
                    tb.set_hop(onsite[i, j], i, j, [0, 0, 0])
    for r, block in hoppings.items():
        if r == (0, 0, 0):
            continue
        for i in range(n):
            for j in range(n):
                if block[i, j]:
                    tb.set_hop(block[i, j], i, j, list(r))
    return tb


def test_pythtb_lattice_valley_equals_the_built_in_model():
    a = PARAMS["lattice_constant"]
    tb = pythtb_model(lattice_valley_hoppings(**PARAMS), a * np.eye(3), [[0, 0, 0], [0, 0, 0]])
    assert_same_model(from_pythtb(tb), LatticeValleyModel(**PARAMS), random_k())


def test_tbmodels_lattice_valley_equals_the_built_in_model():
    tbmodels = pytest.importorskip("tbmodels")
    a = PARAMS["lattice_constant"]
    hoppings = lattice_valley_hoppings(**PARAMS)
    model = tbmodels.Model(on_site=np.diag(hoppings.pop((0, 0, 0))).real, pos=[[0, 0, 0]] * 2,
                           uc=a * np.eye(3), dim=3)
    for r, block in hoppings.items():  # each R > 0 once: TBmodels adds the conjugate
        for i, j in zip(*np.nonzero(block)):
            model.add_hop(block[i, j], int(i), int(j), r)
    assert_same_model(from_tbmodels(model), LatticeValleyModel(**PARAMS), random_k())


def displaced_hoppings(seed=5, n=3):
    """Random hoppings of an n-orbital model on R ∈ {0, ±x, ±y, ±z, x+y} (R ≥ 0 given)."""
    rng = np.random.default_rng(seed)
    out = {}
    for r in [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0)]:
        block = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
        out[r] = (block + block.conj().T) / 2 if r == (0, 0, 0) else block
    return out


LATTICE = np.array([[1.0, 0.1, 0.0], [0.2, 1.3, 0.0], [0.0, 0.3, 0.9]])
ORBITALS = [[0.0, 0.0, 0.0], [0.3, 0.1, 0.5], [0.6, 0.7, 0.2]]


def reduced(k):
    """Reduced coordinates κ = A k / 2π of Cartesian k (columns), rows of A the lattice vectors."""
    return (LATTICE @ k).T / (2 * np.pi)


def test_pythtb_positions_enter_the_phase_as_in_pythtb():
    tb = pythtb_model(displaced_hoppings(), LATTICE, ORBITALS)
    model = from_pythtb(tb)
    k = random_k(12)
    reference = np.array([tb._gen_ham(kappa) for kappa in reduced(k)])
    assert np.abs(model.hamiltonian(*k) - reference).max() <= 1e-12 * np.abs(reference).max()
    # ∂H/∂k against a finite difference of PythTB's own H(k) (error ~1e-11 at this step)
    def pythtb_h(kx, ky, kz):
        kk = np.stack([kx, ky, kz])
        return np.array([tb._gen_ham(kappa) for kappa in reduced(kk)])
    fd = finite_difference_gradient(pythtb_h, *k, step=1e-3)
    exact = model.hamiltonian_gradient(*k)
    assert np.abs(exact - fd).max() <= 1e-8 * np.abs(exact).max()


def test_pythtb_spinful_model():
    pythtb = pytest.importorskip("pythtb")
    tb = pythtb.tb_model(3, 3, LATTICE, ORBITALS[:2], nspin=2)
    tb.set_onsite([[0.3, 0.1, 0.0, 0.2], [-0.4, 0.0, 0.5, 0.0]])  # [e0, sx, sy, sz] per orbital
    tb.set_hop([0.2, 0.05, 0.0, 0.1j], 0, 1, [1, 0, 0])
    tb.set_hop(0.7, 1, 1, [0, 0, 1])
    tb.set_hop([0.1, 0.0, 0.3, 0.0], 0, 0, [0, 1, 0])
    model = from_pythtb(tb)
    assert model.n_bands == 4
    k = random_k(10)
    reference = np.array([tb._gen_ham(kappa).reshape(4, 4) for kappa in reduced(k)])
    assert np.abs(model.hamiltonian(*k) - reference).max() <= 1e-12 * np.abs(reference).max()


def test_tbmodels_positions_enter_the_phase_as_convention_1():
    tbmodels = pytest.importorskip("tbmodels")
    hop = displaced_hoppings()
    full = {}
    for r, block in hop.items():  # the full H(R), both signs, as TBmodels' contains_cc=True takes
        full[r] = full.get(r, 0) + block
        if r != (0, 0, 0):
            minus = tuple(-x for x in r)
            full[minus] = full.get(minus, 0) + block.conj().T
    model = tbmodels.Model(hop=full, pos=ORBITALS, uc=LATTICE, contains_cc=True)
    adapted = from_tbmodels(model)
    k = random_k(12)
    reference = model.hamilton(reduced(k), convention=1)
    assert np.abs(adapted.hamiltonian(*k) - reference).max() <= 1e-12 * np.abs(reference).max()
    fd = finite_difference_gradient(
        lambda kx, ky, kz: model.hamilton(reduced(np.stack([kx, ky, kz])), convention=1), *k)
    exact = adapted.hamiltonian_gradient(*k)
    assert np.abs(exact - fd).max() <= 1e-8 * np.abs(exact).max()


def test_adapters_refuse_what_they_cannot_convert():
    pythtb = pytest.importorskip("pythtb")
    tbmodels = pytest.importorskip("tbmodels")
    with pytest.raises(ValueError, match="dim_k"):
        from_pythtb(pythtb.tb_model(2, 2, np.eye(2), [[0, 0]]))
    with pytest.raises(TypeError, match="pythtb.tb_model"):
        from_pythtb(object())
    with pytest.raises(ValueError, match="unit cell"):
        from_tbmodels(tbmodels.Model(pos=[[0, 0, 0]], on_site=[1.0], dim=3))


def test_a_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pythtb", None)  # import pythtb now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'qmdipole\[adapters\]'"):
        from_pythtb(None)
