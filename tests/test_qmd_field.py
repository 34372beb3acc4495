"""The k_x-integrated quantum-metric-dipole field (Fig. 3 data): symmetries, the dipolar asymmetry,
quadrature convergence, and an independent route (closed-form integrand of Eq. 14 + scipy.quad)."""

import numpy as np
import pytest
from scipy import integrate

from qmdipole.io import check_cf
from qmdipole.models import ValleyModel
from qmdipole.qmd_field import kx_quadrature, qmd_field

# valley 1 of Fig. 4: Δ₁ = 1, v' = 1, m = 1.9 (m v'²/2 = 0.95), v = 1
VALLEY1 = dict(delta=1.0, vprime=1.0, tau=1, v=1.0, mass=1.9)
GRID = dict(k_max=2.5, n=41, kx_max=np.inf, n_kx=96)


@pytest.fixture(scope="module")
def valley1():
    return qmd_field(ValleyModel(**VALLEY1), **GRID, valley=1)


def _half_plane_maxima(ds):
    mag = ds["magnitude"]
    return float(mag.where(ds["kz"] < 0).max()), float(mag.where(ds["kz"] > 0).max())


def test_gxxx_integrates_to_zero(valley1):
    """∫dk_x v_x g_xx = 0: v_x is odd and g_xx even under k_x → −k_x (Eq. 14)."""
    scale = float(np.abs(valley1["G_zxx_kx"]).max())
    assert float(np.abs(valley1["G_xxx_kx"]).max()) <= 1e-14 * scale


def test_symmetry_about_ky(valley1):
    """G_yxx is odd in k_y, G_zxx and the magnitude are even (the paper: symmetric about k_y = 0)."""
    flip = valley1.isel(ky=slice(None, None, -1))
    scale = float(valley1["magnitude"].max())
    np.testing.assert_allclose(valley1["G_yxx_kx"], -flip["G_yxx_kx"].values, atol=1e-14 * scale)
    np.testing.assert_allclose(valley1["G_zxx_kx"], flip["G_zxx_kx"].values, atol=1e-14 * scale)
    np.testing.assert_allclose(valley1["magnitude"], flip["magnitude"].values, atol=1e-14 * scale)


def test_dipolar_asymmetry_stronger_lobe_at_negative_kz(valley1):
    """Fig. 3: for v' > 0 the hot spot of |(G_y, G_z)| lies in the lower half plane (k_z < 0)."""
    below, above = _half_plane_maxima(valley1)
    assert below > 1.1 * above
    mag = valley1["magnitude"]
    iy, iz = np.unravel_index(int(np.argmax(mag.values)), mag.shape)
    assert float(valley1["kz"][iz]) < 0 and float(valley1["ky"][iy]) == pytest.approx(0.0, abs=1e-12)


def test_dipolar_asymmetry_flips_with_vprime():
    flipped = qmd_field(ValleyModel(**{**VALLEY1, "vprime": -1.0}), **GRID)
    below, above = _half_plane_maxima(flipped)
    assert above > 1.1 * below
    mirror = qmd_field(ValleyModel(**VALLEY1), **GRID).isel(kz=slice(None, None, -1))
    np.testing.assert_allclose(flipped["magnitude"], mirror["magnitude"].values, rtol=1e-12, atol=1e-15)


def test_no_asymmetry_without_vprime():
    """v' = 0 restores the mirror-z symmetry: the magnitude is even in k_z, G_zxx odd."""
    ds = qmd_field(ValleyModel(**{**VALLEY1, "vprime": 0.0}), **GRID)
    flip = ds.isel(kz=slice(None, None, -1))
    scale = float(ds["magnitude"].max())
    np.testing.assert_allclose(ds["magnitude"], flip["magnitude"].values, atol=1e-13 * scale)
    np.testing.assert_allclose(ds["G_zxx_kx"], -flip["G_zxx_kx"].values, atol=1e-13 * scale)


def test_kx_quadrature_converges():
    """Two resolutions of the k_x rule agree (exponential convergence of the tan-mapped Gauss rule)."""
    model = ValleyModel(**VALLEY1)
    coarse = qmd_field(model, k_max=2.5, n=21, kx_max=np.inf, n_kx=48)
    fine = qmd_field(model, k_max=2.5, n=21, kx_max=np.inf, n_kx=96)
    for name in ("G_yxx_kx", "G_zxx_kx", "magnitude"):
        scale = float(np.abs(fine[name]).max())
        assert float(np.abs(coarse[name] - fine[name]).max()) <= 1e-9 * scale


def test_finite_window_is_the_truncated_integral():
    """kx_max finite integrates [−kx_max, kx_max]: the difference to the full line is the k_x⁻³ tail."""
    model = ValleyModel(**VALLEY1)
    full = qmd_field(model, k_max=1.0, n=5, kx_max=np.inf, n_kx=96)
    cut = qmd_field(model, k_max=1.0, n=5, kx_max=40.0, n_kx=96)
    # tail of G_zxx: 2 ∫_L^∞ v' g_xx dk_x with g_xx → v²(v²k_y² + d_z²)/(4 v⁴ k_x⁴)
    d_z = 1.0 + full["kz"] ** 2 / (2 * 1.9)
    tail = 2 * 1.0 * (full["ky"] ** 2 + d_z**2) / (4 * 3 * 40.0**3)
    np.testing.assert_allclose(full["G_zxx_kx"] - cut["G_zxx_kx"], tail, rtol=0.02)


def _integrand(kx, ky, kz, component, p=VALLEY1):
    """Closed-form v_i g_xx of the valence band of Eq. (14) (independent of qmdipole.geometry)."""
    v, m = p["v"], p["mass"]
    d_z = p["delta"] + kz**2 / (2 * m)
    energy = np.sqrt(v**2 * kx**2 + v**2 * ky**2 + d_z**2)
    g_xx = v**2 * (v**2 * ky**2 + d_z**2) / (4 * energy**4)
    velocity = {"x": -(v**2) * kx / energy, "y": -(v**2) * ky / energy,
                "z": p["vprime"] - kz / m * d_z / energy}[component]
    return velocity * g_xx


@pytest.mark.parametrize("ky, kz", [(0.0, -0.75), (0.6, 1.2), (-1.8, -2.5), (2.5, 0.0)])
def test_against_scipy_quad(ky, kz):
    ds = qmd_field(ValleyModel(**VALLEY1), k_max=2.5, n=21, kx_max=np.inf, n_kx=96)
    point = ds.sel(ky=ky, kz=kz, method="nearest")
    ky, kz = float(point["ky"]), float(point["kz"])
    for c in ("y", "z"):
        ref, _ = integrate.quad(_integrand, -np.inf, np.inf, args=(ky, kz, c), epsabs=1e-13, epsrel=1e-12)
        assert float(point[f"G_{c}xx_kx"]) == pytest.approx(ref, rel=1e-9, abs=1e-13)


def test_conduction_band_lobe_flips():
    """For the conduction band the odd part of v_z changes sign: the hot spot moves to k_z > 0."""
    ds = qmd_field(ValleyModel(**VALLEY1), band="conduction", **GRID)
    below, above = _half_plane_maxima(ds)
    assert above > 1.1 * below


def test_batches_do_not_change_the_result(valley1):
    small = qmd_field(ValleyModel(**VALLEY1), **GRID, batch_points=1000)
    for name in ("G_xxx_kx", "G_yxx_kx", "G_zxx_kx"):
        np.testing.assert_allclose(small[name], valley1[name], rtol=1e-13, atol=1e-16)


def test_dataset_contract(valley1):
    check_cf(valley1)
    for name in ("G_xxx_kx", "G_yxx_kx", "G_zxx_kx", "magnitude"):
        assert valley1[name].dims == ("ky", "kz")
    np.testing.assert_allclose(valley1["ky"], np.linspace(-2.5, 2.5, 41))
    np.testing.assert_allclose(valley1["magnitude"], np.hypot(valley1["G_yxx_kx"], valley1["G_zxx_kx"]))
    assert valley1.attrs["valley"] == 1 and valley1.attrs["band"] == "valence"


def test_kx_quadrature_rule():
    nodes, weights = kx_quadrature(np.inf, 64)
    assert np.sum(weights / (1 + nodes**2) ** 2) == pytest.approx(np.pi / 2, rel=1e-13)
    nodes, weights = kx_quadrature(3.0, 64, kx_scale=0.5)
    assert np.sum(weights * nodes**2) == pytest.approx(2 * 27 / 3, rel=1e-12)
    np.testing.assert_array_equal(nodes, -nodes[::-1])


def test_rejects_bad_band():
    with pytest.raises(ValueError, match="band"):
        qmd_field(ValleyModel(**VALLEY1), band="core", k_max=1.0, n=3, kx_max=np.inf, n_kx=8)
