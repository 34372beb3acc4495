"""Pair-resolved band geometry of the NDD: the q-derivative of the Kubo formula (Eq. 11) per
ordered band pair, in closed form from H, ∂H and ∂²H at k (no finite differences in q).

Light along q̂ = d, polarised along ê = e (units: ħ = 1, k in the model's units). For an ordered
pair (m, n), m ≠ n, Eq. (11) with the current vertex V_e = ê·∂H taken at the midpoint k − q d/2
holds

    X_mn(q) = ε_m(k − q d) − ε_n(k),   M_mn(q) = |⟨u_m(k − q d)|V_e(k − q d/2)|u_n(k)⟩|².

At q = 0, with V^a_mn = ⟨m|∂_aH|n⟩, ε_mn = ε_m − ε_n and the interband Berry connection
A^a_mn = i⟨m|∂_a n⟩ = i V^a_mn/(ε_n − ε_m):

    M_mn = |V^e_mn|² = ε_mn² g^{mn}_ee,   g^{mn}_ab = Re[A^a_mn A^b_nm] (the pair metric),
    X′ = −v^d_m,
    M′_mn = −2 Re[V^e_nm Σ_{l≠m} D_ml V^e_ln] − Re[V^e_nm W_mn],   D_ml = V^d_ml/(ε_m − ε_l),
    W_mn = ⟨m|∂_d ∂_e H|n⟩ = Σ_ab e_a d_b ⟨m|∂_a∂_bH|n⟩

(the derivative of ⟨u_m(k − q d)| gives −⟨∂_d u_m|; its l = m part is imaginary and drops out,
so M′ is gauge invariant). The l = n term is −2 ε_mn v^e_n g^{mn}_ed, a pair quantum metric
dipole; l ≠ m, n are virtual (three-band) transitions, 2 ε_mn ε_ln Im[A^e_nm A^d_ml A^e_ln].
The vertex term enters Δn as (f_m − f_n) M′_mn/(X² − z²); it is odd under m ↔ n
(Re[V^e_nm W_mn] is even, f_m − f_n odd, X² even), so it cancels between (m, n) and (n, m) at
every k: the change of the current vertex along q (∂²H) never enters Δn, nor the Δn of an
unordered pair {m, n}, and is left out here. For two bands only l = n exists and
g^{cv} = g_c = g_v: the sum over (c, v), (v, c) is then the paper's Eq. (12), for any H(k).

Degenerate pairs (|ε_m − ε_l| below ``degeneracy_tol``) are left out of D, as in
:mod:`qmdipole.geometry`.
"""

from __future__ import annotations

import numpy as np

from .geometry import DEFAULT_DEGENERACY_TOL, eigh_by_point, model_matrices


def along(array, direction, axis=0):
    """Σ_a direction[a] · array[..., a, ...] over ``axis`` (Cartesian), skipping zero components,
    so that an axis-aligned direction picks its component exactly."""
    array = np.asarray(array)
    pick = (slice(None),) * (axis % array.ndim)
    return combined(direction, lambda a: array[pick + (a,)])


def combined(direction, component):
    """Σ_a d_a · component(a) over the non-zero components of the direction d (a Cartesian index
    a: component(a) itself), in the order a = 0, 1, 2; ``component`` is called only for those.
    A lone unit component is returned as it is (no copy)."""
    if isinstance(direction, (int, np.integer)):
        return component(int(direction))
    terms = [(a, direction[a]) for a in range(3) if direction[a] != 0]
    (a, d), rest = terms[0], terms[1:]
    total = component(a) if d == 1.0 and not rest else d * component(a)
    for a, d in rest:
        total = total + d * component(a)
    return total


def pair_derivatives(model, kx, ky, kz, q_hat, e_hat, degeneracy_tol=DEFAULT_DEGENERACY_TOL,
                     block_elements=2**18):
    """ε_m, X′ and M_mn, M′_mn (without the vertex term W) of the module docstring at flat
    k-points. Returns ``(energy (nb, N), x_prime (nb, N), m (nb, nb, N), m_prime (nb, nb, N))``,
    x_prime[m] = −v^d_m. Worked out in blocks of ``block_elements`` / nb² k-points, so that the
    matrices of a block (~40 nb² bytes per k-point) stay bounded."""
    kx, ky, kz = (np.ravel(c) for c in (kx, ky, kz))
    n_bands, n_points = int(model.n_bands), len(kx)
    out = (np.empty((n_bands, n_points)), np.empty((n_bands, n_points)),
           np.empty((n_bands, n_bands, n_points)), np.empty((n_bands, n_bands, n_points)))
    step = max(block_elements // n_bands**2, 1)
    for start in range(0, n_points, step):
        part = slice(start, start + step)
        found = _pair_derivatives(model, kx[part], ky[part], kz[part], q_hat, e_hat,
                                  degeneracy_tol)
        for target, value in zip(out, found):  # k-index first in a block, last in the results
            target[..., part] = np.moveaxis(value, 0, -1)
    return out


def _pair_derivatives(model, kx, ky, kz, q_hat, e_hat, degeneracy_tol):
    """:func:`pair_derivatives` of one block, k-index first (batched matrix products)."""
    hamiltonian, gradient = model_matrices(model, kx, ky, kz)
    energy, u = eigh_by_point(hamiltonian)  # (N, m), (N, a, m)
    u_dagger = np.conj(u).transpose(0, 2, 1)
    v_e = u_dagger @ along(gradient, e_hat, 0) @ u  # V^e_mn, (N, m, n)
    v_d = u_dagger @ along(gradient, q_hat, 0) @ u
    gap = energy[:, :, None] - energy[:, None, :]  # ε_m − ε_l
    close = np.abs(gap) < degeneracy_tol  # includes l = m
    d_matrix = np.where(close, 0.0, v_d / np.where(close, 1.0, gap))
    m_prime = -2 * np.real(np.conj(v_e) * (d_matrix @ v_e))  # Σ_{l≠m} D_ml V^e_ln; V^e_nm
    x_prime = -np.diagonal(v_d, axis1=1, axis2=2).real
    return energy, x_prime, np.abs(v_e) ** 2, m_prime

