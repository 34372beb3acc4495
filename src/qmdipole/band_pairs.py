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
dipole; l ≠ m, n are virtual (three-band) transitions, 2 ε_mn ε_ln Im[A^e_nm A^d_ml A^e_ln]; W is
the change of the current vertex along q. For two bands only l = n exists, g^{cv} = g_c = g_v, and
with W = 0 the sum over (c, v), (v, c) is the paper's Eq. (12).

Degenerate pairs (|ε_m − ε_l| below ``degeneracy_tol``) are left out of D, as in
:mod:`qmdipole.geometry`.
"""

from __future__ import annotations

import numpy as np

from .geometry import DEFAULT_DEGENERACY_TOL, check_model_values, hermitian_eigh, sandwich


def along(array, direction, axis=0):
    """Σ_a direction[a] · array[..., a, ...] over ``axis`` (Cartesian), skipping zero components,
    so that an axis-aligned direction picks its component exactly."""
    array = np.asarray(array)
    terms = [direction[a] * np.take(array, a, axis=axis) for a in range(3) if direction[a] != 0]
    return sum(terms[1:], terms[0])


def vertex_derivative(model, kx, ky, kz, q_hat, e_hat, step):
    """∂_d(ê·∂H) = Σ_ab e_a d_b ∂_a∂_bH at flat k-points, (N, nb, nb), or None where it vanishes.

    From the model's ``hamiltonian_hessian(kx, ky, kz)`` ((3, 3) + S + (nb, nb)) when it has one;
    otherwise by the fourth-order central difference of ê·∂H along d with step h = ``step``
    (error h⁴ ∂⁵H/30 and round-off ~1e-16 |∂H|/h). Returns None when ê·∂H(k ± h d) are equal at
    every point (an ê·∂H constant along d, e.g. Eq. 14 for q ∥ ẑ, ê ⊥ ẑ): then W = 0 exactly.
    """
    k = np.stack([kx, ky, kz])
    if callable(getattr(model, "hamiltonian_hessian", None)):
        hessian = np.asarray(model.hamiltonian_hessian(kx, ky, kz))
        out = along(along(hessian, e_hat, 0), q_hat, 0)
        return out if np.any(out) else None

    def vertex(shift):
        shifted = k + shift * np.asarray(q_hat)[:, None]
        return along(model.hamiltonian_gradient(*shifted), e_hat, 0)

    near = vertex(step) - vertex(-step)
    if not np.any(near):
        return None
    far = vertex(2 * step) - vertex(-2 * step)
    return (8 * near - far) / (12 * step)


def pair_derivatives(model, kx, ky, kz, q_hat, e_hat, step,
                     degeneracy_tol=DEFAULT_DEGENERACY_TOL):
    """ε_m, X′ and M_mn, M′_mn of the module docstring at flat k-points.

    Returns ``(energy (nb, N), x_prime (nb, N), m (nb, nb, N), m_prime (nb, nb, N))``;
    x_prime[m] = −v^d_m. ``step``: of :func:`vertex_derivative`, for models without a Hessian.
    """
    kx, ky, kz = (np.ravel(c) for c in (kx, ky, kz))
    n_bands = int(model.n_bands)
    hamiltonian = model.hamiltonian(kx, ky, kz)
    gradient = model.hamiltonian_gradient(kx, ky, kz)
    check_model_values(model, (kx, ky, kz), {
        "H(k)": (hamiltonian, (None, n_bands, n_bands)),
        "dH/dk": (gradient, (3, None, n_bands, n_bands))})
    energy, u = hermitian_eigh(hamiltonian)
    gradient = np.moveaxis(gradient, 1, -1)  # (3, a, b, N)
    v_e = sandwich(u, along(gradient, e_hat, 0), u)  # V^e_mn, (m, n, N)
    v_d = sandwich(u, along(gradient, q_hat, 0), u)
    gap = energy[:, None, :] - energy[None, :, :]  # ε_m − ε_l
    close = np.abs(gap) < degeneracy_tol  # includes l = m
    d_matrix = np.where(close, 0.0, v_d / np.where(close, 1.0, gap))
    chain = np.einsum("mlk,lnk->mnk", d_matrix, v_e)  # Σ_{l≠m} D_ml V^e_ln
    m_prime = -2 * np.real(np.conj(v_e) * chain)  # conj(V^e_mn) = V^e_nm
    vertex = vertex_term(model, kx, ky, kz, q_hat, e_hat, step, u, v_e)
    if vertex is not None:
        m_prime += vertex
    diagonal = np.arange(n_bands)
    x_prime = -v_d[diagonal, diagonal].real
    return energy, x_prime, np.abs(v_e) ** 2, m_prime


def vertex_term(model, kx, ky, kz, q_hat, e_hat, step, u=None, v_e=None):
    """The vertex part −Re[V^e_nm W_mn] of M′_mn (nb, nb, N) at flat k-points, or None where
    ê·∂H does not change along q̂ (:func:`vertex_derivative`). ``u`` (a, m, N) and ``v_e``
    (m, n, N): the eigenstates and V^e if already known (else from the model)."""
    curvature = vertex_derivative(model, kx, ky, kz, q_hat, e_hat, step)
    if curvature is None:
        return None
    if u is None:
        _, u = hermitian_eigh(model.hamiltonian(kx, ky, kz))
        gradient = np.moveaxis(model.hamiltonian_gradient(kx, ky, kz), 1, -1)
        v_e = sandwich(u, along(gradient, e_hat, 0), u)
    w = sandwich(u, np.moveaxis(curvature, 0, -1), u)
    return -np.real(np.conj(v_e) * w)
