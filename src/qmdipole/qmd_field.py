"""The k_x-integrated quantum-metric-dipole field of one band over the (k_y, k_z) plane (Fig. 3).

For one band m the dipoles of g_xx form the vector (G_xxx, G_yxx, G_zxx) with G_ixx = v_i g_xx
(v_i = ∂ε_m/∂k_i, g_xx the quantum metric of Eq. 7). Fig. 3 shows it after integrating over k_x:

    G_ixx^{(k_x)}(k_y, k_z) = ∫ dk_x  v_i(k) g_xx(k),      i = x, y, z,

as streamlines of (G_yxx^{(k_x)}, G_zxx^{(k_x)}) coloured by |(G_y, G_z)|.

Conventions (docs/conventions.md): ħ = 1, energies in Δ ≡ Δ₁, momenta in k₀ = Δ/(ħv); v_i g_xx then has units
Δ/k₀³ and the k_x integral Δ/k₀² = ħ²v²/Δ ("Delta (hbar v/Delta)^2").

Quadrature. The integrand decays as a power law in k_x (for Eq. 14, g_xx ~ k_x⁻⁴, so G_zxx ~ v' k_x⁻⁴
and G_yxx ~ k_x⁻⁵). A uniform rule on a truncated interval converges slowly; instead k_x is mapped to
an angle, k_x = s tan θ (s = ``kx_scale``, default 1 k₀, the width of the integrand near the gap), and
θ ∈ [−θ_max, θ_max], θ_max = arctan(kx_max/s), is integrated with n_kx-point Gauss–Legendre:

    ∫_{−kx_max}^{kx_max} dk_x F(k_x) = ∫ dθ s sec²θ F(s tan θ).

``kx_max = inf`` integrates the whole line (θ_max = π/2, the nodes stay inside). For Eq. (14) the mapped
integrand is analytic in θ up to and including ±π/2 (F sec²θ ~ cos²θ there), so the rule converges
exponentially: ~100 nodes give ~1e-10 relative accuracy on the whole line, and a finite ``kx_max``
only adds its truncation error (∝ kx_max⁻³). The nodes are symmetric about k_x = 0, so odd
integrands (G_xxx for Eq. 14, odd under k_x → −k_x) vanish to round-off.

The plane is evaluated in batches of (k_y, k_z) points × all k_x nodes, bounded by ``batch_points``
k-points per batch, as blocks of the band layer (:func:`qmdipole.integrand.model_slabs`, the
generic :func:`qmdipole.geometry.band_geometry`: any model).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.special import roots_legendre

from . import units
from .integrand import model_slabs
from .io import json_attribute

_COMPONENTS = ("x", "y", "z")


def band_index(model, band: str | int) -> int:
    """Index of ``band`` ("valence", "conduction" or an int) among the ascending bands of ``model``.

    "valence" is band ``n_bands // 2 − 1`` and "conduction" band ``n_bands // 2`` (half filling).
    """
    n_bands = int(getattr(model, "n_bands", 2))
    if isinstance(band, str):
        names = {"valence": n_bands // 2 - 1, "conduction": n_bands // 2}
        if band not in names:
            raise ValueError(f"band must be 'valence', 'conduction' or an index, got {band!r}")
        return names[band]
    index = int(band)
    if not 0 <= index < n_bands:
        raise ValueError(f"band index {index} out of range for a {n_bands}-band model")
    return index


def kx_quadrature(kx_max: float, n_kx: int, kx_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ∫_{−kx_max}^{kx_max} dk_x on the map k_x = s tan θ with Gauss–Legendre in θ."""
    if n_kx < 2:
        raise ValueError(f"n_kx must be >= 2, got {n_kx}")
    if not kx_max > 0 or not kx_scale > 0:
        raise ValueError(f"kx_max and kx_scale must be > 0, got {kx_max}, {kx_scale}")
    theta_max = np.pi / 2 if np.isinf(kx_max) else float(np.arctan(kx_max / kx_scale))
    t, w = roots_legendre(int(n_kx))
    t = 0.5 * (t - t[::-1])  # exact antisymmetry of the nodes (k_x → −k_x)
    w = 0.5 * (w + w[::-1])
    theta = theta_max * t
    return kx_scale * np.tan(theta), w * theta_max * kx_scale / np.cos(theta) ** 2


def qmd_field(model, *, band: str | int = "valence", k_max: float, n: int, kx_max: float = np.inf,
              n_kx: int = 128, kx_scale: float = 1.0, batch_points: int = 2**18,
              valley: int | None = None) -> xr.Dataset:
    """∫dk_x (v_x, v_y, v_z) g_xx of one band on an n×n (k_y, k_z) grid over [−k_max, k_max]².

    Returns ``G_xxx_kx``, ``G_yxx_kx``, ``G_zxx_kx`` (ky, kz) and ``magnitude`` = √(G_y² + G_z²),
    in units of Δ(ħv/Δ)²; see the module docstring for the k_x quadrature. ``valley`` (1-based) is
    only recorded in the attributes.
    """
    if n < 2 or not k_max > 0:
        raise ValueError(f"need n >= 2 and k_max > 0, got n={n}, k_max={k_max}")
    m = band_index(model, band)
    ky = np.linspace(-k_max, k_max, int(n))
    kz = np.linspace(-k_max, k_max, int(n))
    kx_nodes, kx_weights = kx_quadrature(kx_max, n_kx, kx_scale)

    plane_ky, plane_kz = (a.ravel() for a in np.meshgrid(ky, kz, indexing="ij"))
    k = (kx_nodes[None, :], plane_ky[:, None], plane_kz[:, None])  # (plane point, k_x node)
    field = np.empty((3, plane_ky.size))
    for rows, slab in model_slabs(model, *k, slab_points=batch_points):
        field[:, rows] = np.stack([slab.dipole(i, 0, 0)[m] for i in range(3)]) @ kx_weights
    field = field.reshape(3, ky.size, kz.size)

    band_name = band if isinstance(band, str) else f"band {m}"
    coords = {
        "ky": ("ky", ky, {**units.MOMENTUM.attrs(), "long_name": "momentum k_y"}),
        "kz": ("kz", kz, {**units.MOMENTUM.attrs(), "long_name": "momentum k_z"}),
    }
    ds = xr.Dataset(coords=coords)
    for i, c in enumerate(_COMPONENTS):
        ds[f"G_{c}xx_kx"] = (
            ("ky", "kz"), field[i],
            {**units.QMD_FIELD.attrs(),
             "long_name": f"k_x-integrated quantum metric dipole int dk_x v_{c} g_xx ({band_name} band)"},
        )
    ds["magnitude"] = (
        ("ky", "kz"), np.hypot(field[1], field[2]),
        {**units.QMD_FIELD.attrs(),
         "long_name": f"magnitude sqrt(G_yxx^2 + G_zxx^2) of the k_x-integrated dipole field ({band_name} band)"},
    )
    ds.attrs.update({
        "title": "k_x-integrated quantum metric dipole field of g_xx (Fig. 3)",
        "band": band_name,
        "band_index": m,
        "kx_max": float(kx_max),
        "n_kx": int(n_kx),
        "kx_scale": float(kx_scale),
        "kx_quadrature": "Gauss-Legendre in theta with k_x = kx_scale * tan(theta), "
                         "|theta| <= arctan(kx_max/kx_scale)",
        "model": json_attribute(model.describe() if hasattr(model, "describe") else repr(model)),
    })
    if valley is not None:
        ds.attrs["valley"] = int(valley)
    return ds
