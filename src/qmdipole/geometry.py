"""Band geometry per band and k-point: ε_m, v_i,m, g_ij,m (Eq. 7) and the Berry curvature Ω_m.

Conventions: ħ = 1; v_i,m = ∂ε_m/∂k_i; the quantum geometric tensor
Q_ij,m = ⟨∂_i u_m|(1 − |u_m⟩⟨u_m|)|∂_j u_m⟩ gives the quantum metric g_ij,m = Re Q_ij,m (Eq. 7)
and the Berry curvature Ω^{ij}_m = −2 Im Q_ij,m, stored as the vector Ω_m = (Ω^{yz}, Ω^{zx}, Ω^{xy})
(so that Ω = ∇_k × A with A = ⟨u|i∇_k u⟩). The quantum metric dipole G_ijk,m = v_i,m g_jk,m is
formed by the reductions from these tables.

Two routes, which the tests compare:

* :func:`two_band_geometry` — closed forms for H = e₀ + d·σ with n = d/|d|:
  ε± = e₀ ± |d|,  v± = ∇e₀ ± (∇d)·n,  g_ij = ∂_i n·∂_j n / 4,  Ω^{ij}_± = ∓ n·(∂_i n × ∂_j n)/2.
* :func:`sum_over_states_geometry` — any number of bands, from H and ∂H:
  Q_ij,m = Σ_{n≠m} ⟨m|∂_iH|n⟩⟨n|∂_jH|m⟩ / (ε_m − ε_n)².

Degeneracies: a pair of bands closer than ``degeneracy_tol`` (absolute, in energy units) has no
well-defined geometry between them. Its term is left out of Q (and, for two bands, n is taken as 0),
so the tables stay finite; the number of such k-points is returned as ``n_degenerate`` and recorded
in the table's attributes. Models with a gap everywhere (all the paper's) have none.
"""

from __future__ import annotations

import numpy as np

DEFAULT_DEGENERACY_TOL = 1e-9

# (component of the Berry-curvature vector) -> (i, j) of Ω^{ij}
_CURL_PAIRS = ((1, 2), (2, 0), (0, 1))


def two_band_geometry(e0, d, grad_e0, grad_d, degeneracy_tol=DEFAULT_DEGENERACY_TOL):
    """Closed-form geometry of H = e₀ + d·σ for N k-points.

    Shapes: ``e0 (N,)``, ``d (3, N)``, ``grad_e0 (3, N)``, ``grad_d (3, 3, N)`` with
    ``grad_d[i, a] = ∂d_a/∂k_i``. Returns a dict of ``energy (2, N)``, ``velocity (2, 3, N)``,
    ``quantum_metric (2, 3, 3, N)``, ``berry_curvature (2, 3, N)`` (band 0 = lower) and
    ``n_degenerate``.
    """
    norm = np.sqrt(np.einsum("an,an->n", d, d))
    degenerate = norm < degeneracy_tol
    safe = np.where(degenerate, 1.0, norm)
    n_hat = d / safe
    n_hat[:, degenerate] = 0.0
    proj = np.einsum("ian,an->in", grad_d, n_hat)  # (∇d)·n

    energy = np.stack([e0 - norm, e0 + norm])
    velocity = np.stack([grad_e0 - proj, grad_e0 + proj])

    inv4e2 = np.where(degenerate, 0.0, 0.25 / safe**2)
    metric = np.empty((3, 3) + norm.shape)
    for i in range(3):
        for j in range(i, 3):
            gij = (np.einsum("an,an->n", grad_d[i], grad_d[j]) - proj[i] * proj[j]) * inv4e2
            metric[i, j] = gij
            metric[j, i] = gij

    inv2e3 = np.where(degenerate, 0.0, 0.5 / safe**3)
    curvature = np.empty((3,) + norm.shape)
    for c, (i, j) in enumerate(_CURL_PAIRS):
        triple = np.einsum("an,an->n", d, np.cross(grad_d[i], grad_d[j], axis=0))
        curvature[c] = triple * inv2e3  # lower band: +n·(∂_i n × ∂_j n)/2

    return {
        "energy": energy,
        "velocity": velocity,
        "quantum_metric": np.stack([metric, metric]),
        "berry_curvature": np.stack([curvature, -curvature]),
        "n_degenerate": int(degenerate.sum()),
    }


def sum_over_states_geometry(hamiltonian, gradient, degeneracy_tol=DEFAULT_DEGENERACY_TOL):
    """General geometry from ``hamiltonian (N, nb, nb)`` and ``gradient (3, N, nb, nb)``.

    Returns the same dict as :func:`two_band_geometry`, bands in ascending energy.
    """
    energy, vectors = np.linalg.eigh(hamiltonian)  # (N, nb), (N, nb, nb)
    vh = np.conj(np.swapaxes(vectors, -1, -2))
    vel_op = vh[None] @ gradient @ vectors[None]  # (3, N, nb, nb): ⟨m|∂_iH|n⟩

    gaps = energy[:, :, None] - energy[:, None, :]  # ε_m − ε_n
    nondeg = np.abs(gaps) >= degeneracy_tol
    inv_gap2 = np.where(nondeg, 1.0 / np.where(nondeg, gaps, 1.0) ** 2, 0.0)
    n_bands = energy.shape[1]
    inv_gap2[:, np.arange(n_bands), np.arange(n_bands)] = 0.0

    # Q_ij,m = Σ_n V_i[m, n] V_j[n, m] / (ε_m − ε_n)²
    weighted = vel_op * inv_gap2[None]
    qgt = np.einsum("inmk,jnkm->ijmn", weighted, vel_op)  # (3, 3, nb, N)
    degenerate_points = (~nondeg).sum(axis=(1, 2)) > n_bands

    curvature = np.stack([-2.0 * qgt[i, j].imag for i, j in _CURL_PAIRS])  # (3, nb, N)
    return {
        "energy": energy.T.copy(),
        "velocity": np.einsum("inmm->min", vel_op).real.copy(),
        "quantum_metric": np.moveaxis(qgt.real, 2, 0).copy(),
        "berry_curvature": np.moveaxis(curvature, 1, 0).copy(),
        "n_degenerate": int(degenerate_points.sum()),
    }


def band_geometry(model, kx, ky, kz, method="auto", degeneracy_tol=DEFAULT_DEGENERACY_TOL):
    """Geometry of ``model`` at the flat k-point arrays ``kx, ky, kz`` (each of shape ``(N,)``).

    ``method``: ``closed_form`` (two-band d·σ models), ``sum_over_states`` (any model), or
    ``auto`` (closed form where the model offers a d-vector).
    """
    if method == "auto":
        method = "closed_form" if hasattr(model, "d_vector") else "sum_over_states"
    if method == "closed_form":
        if not hasattr(model, "d_vector"):
            raise ValueError(
                "tabulate.method 'closed_form' needs a two-band model with d_vector(); "
                "use 'sum_over_states'"
            )
        e0, d = model.d_vector(kx, ky, kz)
        grad_e0, grad_d = model.d_gradient(kx, ky, kz)
        return two_band_geometry(e0, d, grad_e0, grad_d, degeneracy_tol)
    if method == "sum_over_states":
        return sum_over_states_geometry(
            model.hamiltonian(kx, ky, kz), model.hamiltonian_gradient(kx, ky, kz), degeneracy_tol
        )
    raise ValueError(f"tabulate.method must be auto, closed_form or sum_over_states; got {method!r}")
