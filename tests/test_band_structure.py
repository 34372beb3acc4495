"""Band structure along k_z and its gap markers (Fig. 2 data), against the closed forms of Eq. (14)."""

import numpy as np
import pytest

from qmdipole.band_structure import band_structure
from qmdipole.io import check_cf
from qmdipole.models import LatticeValleyModel, TwoBandModel, ValleyModel, build_model

FIG4_MODEL = {
    "kind": "valley",
    "v": 1.0,
    "mass": 1.9,
    "valleys": [{"delta": 1.0, "vprime": 1.0, "tau": 1}, {"delta": 2.0, "vprime": -1.0, "tau": -1}],
}
KZ = np.linspace(-3.0, 3.0, 301)


@pytest.fixture(scope="module")
def fig4():
    return band_structure([build_model(FIG4_MODEL, i) for i in range(2)], KZ)


@pytest.mark.parametrize(
    "delta, vprime, mass, v, tau",
    [(1.0, 1.0, 1.9, 1.0, 1), (2.0, -1.0, 1.9, 1.0, -1), (0.7, 0.3, 0.8, 2.5, 1), (1.3, -0.45, 3.0, 0.4, -1),
     (1.0, 0.0, 1.0, 1.0, 1)],
)
def test_extrema_match_eq14_closed_form(delta, vprime, mass, v, tau):
    """Conduction minimum at k_z = −m v' with Δ − m v'²/2; valence maximum at +m v' with its negative."""
    model = ValleyModel(delta=delta, vprime=vprime, tau=tau, v=v, mass=mass)
    ds = band_structure([model], np.linspace(-4.0, 4.0, 201)).sel(valley=1)
    edge = delta - mass * vprime**2 / 2
    assert float(ds["delta"]) == pytest.approx(delta, abs=1e-14)
    assert float(ds["kz_conduction_min"]) == pytest.approx(-mass * vprime, abs=1e-10)
    assert float(ds["kz_valence_max"]) == pytest.approx(mass * vprime, abs=1e-10)
    assert float(ds["conduction_min"]) == pytest.approx(edge, abs=1e-13)
    assert float(ds["valence_max"]) == pytest.approx(-edge, abs=1e-13)
    assert float(ds["indirect_gap"]) == pytest.approx(2 * edge, abs=1e-13)


def test_energy_along_the_cut_is_eq14(fig4):
    for i, valley in enumerate(FIG4_MODEL["valleys"]):
        d_z = valley["delta"] + KZ**2 / (2 * FIG4_MODEL["mass"])
        e0 = valley["vprime"] * KZ
        energy = fig4["energy"].sel(valley=i + 1)
        np.testing.assert_allclose(energy.sel(band=0), e0 - d_z, atol=1e-13)
        np.testing.assert_allclose(energy.sel(band=1), e0 + d_z, atol=1e-13)


def test_global_gap_of_fig4_parameters(fig4):
    """Fig. 4 caption: Δ₁ = Δ, Δ₂ = 2Δ, v'₁ = −v'₂, m v'²/2 = 0.95 Δ give a global gap of 0.1 Δ."""
    assert float(fig4["global_gap"]) == pytest.approx(0.1, abs=1e-13)
    assert float(fig4["global_conduction_min"]) == pytest.approx(0.05, abs=1e-13)
    assert float(fig4["global_valence_max"]) == pytest.approx(-0.05, abs=1e-13)
    np.testing.assert_allclose(fig4["delta"], [1.0, 2.0], atol=1e-14)
    np.testing.assert_allclose(fig4["indirect_gap"], [0.1, 2.1], atol=1e-13)
    np.testing.assert_allclose(fig4["kz_conduction_min"], [-1.9, 1.9], atol=1e-10)


def test_dataset_contract(fig4):
    check_cf(fig4)  # units and long_name on every variable and coordinate
    assert list(fig4["valley"].values) == [1, 2]
    assert fig4["energy"].dims == ("valley", "band", "kz")
    assert fig4.attrs["valence_band"] == 0 and fig4.attrs["conduction_band"] == 1
    for name in ("delta", "kz_conduction_min", "conduction_min", "kz_valence_max", "valence_max",
                 "indirect_gap"):
        assert fig4[name].dims == ("valley",)
    assert fig4["global_gap"].dims == ()


def test_semimetal_has_negative_global_gap():
    model = ValleyModel(delta=1.0, vprime=1.0, mass=2.5)  # m v'^2 / 2 = 1.25 > Δ
    ds = band_structure([model], np.linspace(-5, 5, 201))
    assert float(ds["global_gap"]) == pytest.approx(2 * (1.0 - 1.25), abs=1e-12)


def test_lattice_model_against_brute_force():
    """Generic path: the markers of the lattice model agree with a dense brute-force search."""
    model = LatticeValleyModel(delta=1.0, vprime=0.8, tau=1, v=1.0, mass=1.5, lattice_constant=0.7)
    kz_max = np.pi / 0.7
    ds = band_structure([model], np.linspace(-kz_max, kz_max, 101)).sel(valley=1)
    kz = np.linspace(-kz_max, kz_max, 2_000_001)
    conduction = 0.8 * np.sin(0.7 * kz) / 0.7 + 1.0 + (1 - np.cos(0.7 * kz)) / (1.5 * 0.49)
    i = np.argmin(conduction)
    assert float(ds["conduction_min"]) == pytest.approx(conduction[i], abs=1e-11)
    assert float(ds["kz_conduction_min"]) == pytest.approx(kz[i], abs=1e-5)
    assert float(ds["conduction_min"]) <= conduction.min() + 1e-14


def test_extremum_outside_window_warns():
    model = ValleyModel(delta=1.0, vprime=1.0, mass=1.9)  # extrema at k_z = ∓1.9
    with pytest.warns(RuntimeWarning, match="edge of the window"):
        band_structure([model], np.linspace(-1.0, 1.0, 51))


class _OffAxisModel(TwoBandModel):
    """e₀ = −k_x² pushes the conduction-band minimum off the k_x = k_y = 0 axis."""

    name = "off_axis"

    def d_vector(self, kx, ky, kz):
        kx, ky, kz = np.broadcast_arrays(*map(np.asarray, (kx, ky, kz)))
        return -(kx**2), np.stack([kx, ky, 1.0 + kz**2])

    def d_gradient(self, kx, ky, kz):
        kx, ky, kz = np.broadcast_arrays(*map(np.asarray, (kx, ky, kz)))
        zero = np.zeros(kx.shape)
        grad_d = np.zeros((3, 3) + kx.shape)
        grad_d[0, 0], grad_d[1, 1], grad_d[2, 2] = 1.0, 1.0, 2 * kz
        return np.stack([-2 * kx, zero, zero]), grad_d


def test_extremum_off_the_cut_warns():
    with pytest.warns(RuntimeWarning, match="not a band extremum in 3-D"):
        ds = band_structure([_OffAxisModel()], np.linspace(-2, 2, 41))
    assert ds.attrs["extrema_on_axis"] == 0
