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
from numba import njit

DEFAULT_DEGENERACY_TOL = 1e-9

# (component of the Berry-curvature vector) -> (i, j) of Ω^{ij}
_CURL_PAIRS = ((1, 2), (2, 0), (0, 1))
#: the geometry fields and the Cartesian shape each has per band and k-point
FIELD_SHAPES = {"energy": (), "velocity": (3,), "quantum_metric": (3, 3), "berry_curvature": (3,)}


def empty_geometry(n_bands: int, n: int) -> dict[str, np.ndarray]:
    """Uninitialised arrays ``(n_bands, *shape, n)`` of every field of :data:`FIELD_SHAPES`."""
    return {name: np.empty((n_bands, *shape, n)) for name, shape in FIELD_SHAPES.items()}


def two_band_geometry(e0, d, grad_e0, grad_d, degeneracy_tol=DEFAULT_DEGENERACY_TOL,
                      block=8192, out=None, offset=0):
    """Closed-form geometry of H = e₀ + d·σ for N k-points.

    Shapes: ``e0 (N,)``, ``d (3, N)``, ``grad_e0 (3, N)``, ``grad_d (3, 3, N)`` with
    ``grad_d[i, a] = ∂d_a/∂k_i``. Returns a dict of ``energy (2, N)``, ``velocity (2, 3, N)``,
    ``quantum_metric (2, 3, 3, N)``, ``berry_curvature (2, 3, N)`` (band 0 = lower) and
    ``n_degenerate``; ``out``: those arrays to fill from k-index ``offset`` on (e.g. a table's
    slab), else new ones. Works block by block (``block`` points) so that temporaries stay in
    cache.
    """
    n = np.shape(e0)[-1]
    out = empty_geometry(2, n) if out is None else out
    n_degenerate = 0
    for start in range(0, n, block):
        part = slice(start, min(start + block, n))
        at = slice(offset + part.start, offset + part.stop)
        n_degenerate += _two_band_block(
            e0[part], d[:, part], grad_e0[:, part], grad_d[:, :, part], degeneracy_tol,
            *(out[name][..., at] for name in FIELD_SHAPES),
        )
    return {**out, "n_degenerate": n_degenerate}


def _two_band_block(e0, d, grad_e0, grad_d, tol, energy, velocity, metric, curvature):
    """Fill one block of the outputs of :func:`two_band_geometry`; return its degenerate count.

    Components of ∇d that vanish on the whole block (most of them for Eq. 14) are skipped.
    """
    norm = np.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
    degenerate = 2 * norm < tol  # the gap 2|d| is below the tolerance
    n_degenerate = int(np.count_nonzero(degenerate))
    inv = 1.0 / (np.where(degenerate, 1.0, norm) if n_degenerate else norm)
    if n_degenerate:
        inv[degenerate] = 0.0  # n = 0: no geometry between degenerate bands
    n_hat = d * inv
    # ∂_i d_a, or None where it vanishes on the block
    grads = [[grad_d[i, a] if grad_d[i, a].any() else None for a in range(3)] for i in range(3)]
    proj = [_sum_products([(g[a], n_hat[a]) for a in range(3)], norm) for g in grads]

    np.subtract(e0, norm, out=energy[0])
    np.add(e0, norm, out=energy[1])
    for i in range(3):
        np.subtract(grad_e0[i], proj[i], out=velocity[0, i])
        np.add(grad_e0[i], proj[i], out=velocity[1, i])

    quarter = 0.25 * inv * inv
    for i in range(3):
        for j in range(i, 3):
            gi, gj = grads[i], grads[j]
            gij = _sum_products([(gi[a], gj[a]) for a in range(3)], norm) - proj[i] * proj[j]
            gij *= quarter
            metric[0, i, j] = metric[0, j, i] = metric[1, i, j] = metric[1, j, i] = gij

    half = 2.0 * inv * quarter  # 1/(2|d|³)
    for c, (i, j) in enumerate(_CURL_PAIRS):
        gi, gj = grads[i], grads[j]
        triple = _sum_products(
            [(d[a], _cross_component(gi, gj, a, norm)) for a in range(3)], norm)
        triple *= half  # lower band: +n·(∂_i n × ∂_j n)/2 = d·(∂_i d × ∂_j d)/(2|d|³)
        curvature[0, c] = triple
        np.negative(triple, out=curvature[1, c])
    return n_degenerate


def _sum_products(pairs, like):
    """Σ x·y over the pairs whose factors are both present (None stands for zero)."""
    total = None
    for x, y in pairs:
        if x is None or y is None:
            continue
        total = x * y if total is None else total + x * y
    return np.zeros_like(like) if total is None else total


def _cross_component(u, v, a, like):
    """Component a of u × v for 3-vectors whose entries may be None (zero)."""
    b, c = (a + 1) % 3, (a + 2) % 3
    plus = _sum_products([(u[b], v[c])], like)
    minus = _sum_products([(u[c], v[b])], like)
    if u[b] is None or v[c] is None:
        return None if (u[c] is None or v[b] is None) else -minus
    return plus if (u[c] is None or v[b] is None) else plus - minus


def hermitian_eigh(matrices):
    """Eigenvalues (nb, N) ascending and eigenvectors (nb, nb, N) of Hermitian (N, nb, nb).

    2×2 matrices are diagonalised in closed form (:func:`_eigh_2x2`, compiled), larger ones by
    LAPACK; either way the result is stored k-index last.
    """
    if matrices.shape[-1] != 2:
        energy, vectors = np.linalg.eigh(matrices)
        return np.ascontiguousarray(energy.T), np.ascontiguousarray(np.moveaxis(vectors, 0, -1))
    energy = np.empty((2, len(matrices)))
    vectors = np.empty((2, 2, len(matrices)), complex)
    _eigh_2x2(np.ascontiguousarray(matrices, dtype=complex), energy, vectors)
    return energy, vectors


@njit(cache=True, nogil=True)
def _eigh_2x2(matrices, energy, vectors):
    """ε = c ∓ r and the eigenvectors of each Hermitian [[c + z, b], [b*, c − z]] of
    ``matrices`` (N, 2, 2), r = sqrt(z² + |b|²), into ``energy`` (2, N) and ``vectors``
    (2, 2, N): the upper state (r + z, b*) for z >= 0, else (b, r − z) (never a cancellation),
    normalised, the lower one orthogonal to it; an exactly degenerate matrix (r = 0) gets the
    unit vectors."""
    for k in range(matrices.shape[0]):
        a, d, b = matrices[k, 0, 0].real, matrices[k, 1, 1].real, matrices[k, 0, 1]
        centre, half = 0.5 * (a + d), 0.5 * (a - d)
        radius = np.sqrt(half * half + b.real * b.real + b.imag * b.imag)
        if half >= 0:
            first, second = complex(radius + half, 0.0), b.conjugate()
        else:
            first, second = b, complex(radius - half, 0.0)
        norm = np.sqrt(abs(first) ** 2 + abs(second) ** 2)
        if norm == 0:
            first, second = complex(1.0, 0.0), complex(0.0, 0.0)
        else:
            first, second = first / norm, second / norm
        vectors[0, 1, k], vectors[1, 1, k] = first, second  # state 1 (upper)
        vectors[0, 0, k], vectors[1, 0, k] = -second.conjugate(), first.conjugate()
        energy[0, k], energy[1, k] = centre - radius, centre + radius


def eigh_by_point(hamiltonian):
    """Eigenvalues (N, nb) ascending and eigenvectors u (N, a, m) (component a of state m) of
    Hermitian (N, nb, nb), k-index first, contiguous: :func:`hermitian_eigh`'s closed form for 2×2,
    LAPACK otherwise."""
    if hamiltonian.shape[-1] != 2:
        return np.linalg.eigh(hamiltonian)
    energy, u = hermitian_eigh(hamiltonian)
    return np.ascontiguousarray(energy.T), np.ascontiguousarray(np.moveaxis(u, -1, 0))


def sum_over_states_geometry(hamiltonian, gradient, degeneracy_tol=DEFAULT_DEGENERACY_TOL):
    """General geometry from ``hamiltonian (N, nb, nb)`` and ``gradient (3, N, nb, nb)``.

    Returns the same dict as :func:`two_band_geometry`, bands in ascending energy: the batched
    eigen-decomposition (closed form for 2 bands, LAPACK otherwise), then one compiled pass over
    the k-points (:func:`_sum_over_states`).
    """
    n_bands = hamiltonian.shape[-1]
    energy, u = eigh_by_point(hamiltonian)
    n = energy.shape[0]
    out = {
        "energy": np.ascontiguousarray(energy.T),
        "velocity": np.empty((n_bands, 3, n)),
        "quantum_metric": np.empty((n_bands, 3, 3, n)),
        "berry_curvature": np.empty((n_bands, 3, n)),
    }
    degenerate = np.zeros(n, bool)
    _sum_over_states(energy, u, np.ascontiguousarray(gradient, dtype=complex), degeneracy_tol,
                     out["velocity"], out["quantum_metric"], out["berry_curvature"], degenerate)
    out["n_degenerate"] = int(degenerate.sum())
    return out


# From this many bands on the velocity matrices U† ∂H U are BLAS products (per k-point, 1 core:
# 16 bands 24.8 -> 17.7 µs, 8 bands 4.4 -> 4.1 µs; 4 bands: loops 0.8 µs, BLAS 1.9 µs).
BLAS_BANDS = 8


@njit(cache=True, nogil=True)
def _sum_over_states(energy, u, gradient, tol, velocity, metric, curvature, degenerate):
    """Fill v, g and Ω of every k-point (k-index last) from ε (N, nb), u (N, a, m), ∂H (3, N, a, b).

    Per k-point: V_i = U† ∂_iH U (the velocity matrix ⟨m|∂_iH|n⟩, its diagonal the band velocity;
    BLAS from :data:`BLAS_BANDS` bands on), then Q_ij,m = Σ_{n≠m} V_i[m, n] V_j[n, m] /
    (ε_m − ε_n)², pairs closer than ``tol`` left out (and ``degenerate[k]`` set). A fixed order of
    every sum: results do not depend on the chunking.
    """
    n, nb = energy.shape
    work = np.empty((nb, nb), np.complex128)
    u_dagger = np.empty((nb, nb), np.complex128)
    vel = np.empty((3, nb, nb), np.complex128)
    q = np.empty((3, 3), np.complex128)
    for k in range(n):
        uk = u[k]
        if nb >= BLAS_BANDS:  # BLAS products (zgemm)
            for a in range(nb):
                for m in range(nb):
                    u_dagger[m, a] = np.conj(uk[a, m])
            for i in range(3):
                np.dot(gradient[i, k], uk, work)
                np.dot(u_dagger, work, vel[i])
        else:  # loops: cheaper than a BLAS call for small matrices
            for i in range(3):
                g = gradient[i, k]
                work[:] = 0
                for a in range(nb):
                    for b in range(nb):
                        gab = g[a, b]
                        for m in range(nb):
                            work[a, m] += gab * uk[b, m]
                v = vel[i]  # Hermitian: the upper triangle, then its mirror
                v[:] = 0
                for a in range(nb):
                    for m in range(nb):
                        c = np.conj(uk[a, m])
                        for p in range(m, nb):
                            v[m, p] += c * work[a, p]
                for m in range(nb):
                    for p in range(m + 1, nb):
                        v[p, m] = np.conj(v[m, p])
        for m in range(nb):
            q[:] = 0
            for p in range(nb):
                if p == m:
                    continue
                gap = energy[k, m] - energy[k, p]
                if abs(gap) < tol:
                    degenerate[k] = True
                    continue
                inv_gap2 = 1.0 / (gap * gap)
                for i in range(3):
                    weighted = vel[i, m, p] * inv_gap2
                    for j in range(i, 3):
                        q[i, j] += weighted * vel[j, p, m]
            for i in range(3):
                velocity[m, i, k] = vel[i, m, m].real
                for j in range(i, 3):
                    metric[m, i, j, k] = metric[m, j, i, k] = q[i, j].real
            curvature[m, 0, k] = -2.0 * q[1, 2].imag  # Ω^{yz}
            curvature[m, 1, k] = 2.0 * q[0, 2].imag  # Ω^{zx} = −2 Im Q_zx = +2 Im Q_xz
            curvature[m, 2, k] = -2.0 * q[0, 1].imag  # Ω^{xy}


def band_geometry(model, kx, ky, kz, method="auto", degeneracy_tol=DEFAULT_DEGENERACY_TOL,
                  block_elements=2**18, out=None):
    """Geometry of ``model`` at the flat k-point arrays ``kx, ky, kz`` (each of shape ``(N,)``).

    ``method``: ``closed_form`` (two-band d·σ models), ``sum_over_states`` (any model), or
    ``auto`` (closed form where the model offers a d-vector). What the model returns is checked at
    every k-point (:func:`check_model_values`): shapes, finite values, Hermitian H and ∂H/∂k.
    The k-points are worked on in blocks of ``block_elements`` / nb² (H and ∂H of a block take
    ~64 nb² bytes per k-point); the results do not depend on it (every k-point on its own).
    Returns the dict of :func:`two_band_geometry` (nb bands); ``out``: its arrays to fill
    (:func:`empty_geometry`), else new ones.
    """
    method = resolve_method(model, method)
    n_bands, n = int(model.n_bands), len(kx)
    out = empty_geometry(n_bands, n) if out is None else out
    step = max(block_elements // n_bands**2, 1)
    n_degenerate = 0
    for start in range(0, n, step):
        part = slice(start, min(start + step, n))
        n_degenerate += _band_geometry(model, kx[part], ky[part], kz[part], method,
                                       degeneracy_tol, out, start)
    return {**out, "n_degenerate": n_degenerate}


def _band_geometry(model, kx, ky, kz, method, degeneracy_tol, out, offset) -> int:
    """:func:`band_geometry` of one block into ``out`` from k-index ``offset`` on, ``method``
    resolved; its number of degenerate k-points."""
    k = (kx, ky, kz)
    if method == "closed_form":
        e0, d = model.d_vector(kx, ky, kz)
        grad_e0, grad_d = model.d_gradient(kx, ky, kz)
        check_model_values(model, k, {"e0(k)": (e0, (None,)), "d(k)": (d, (3, None)),
                                      "grad e0(k)": (grad_e0, (3, None)),
                                      "grad d(k)": (grad_d, (3, 3, None))})
        return two_band_geometry(e0, d, grad_e0, grad_d, degeneracy_tol, out=out,
                                 offset=offset)["n_degenerate"]
    found = sum_over_states_geometry(*model_matrices(model, kx, ky, kz), degeneracy_tol)
    for name, array in out.items():
        array[..., offset:offset + len(kx)] = found[name]
    return found["n_degenerate"]


def model_matrices(model, kx, ky, kz) -> tuple[np.ndarray, np.ndarray]:
    """H(k) ``(N, nb, nb)`` and ∂H/∂k ``(3, N, nb, nb)`` of ``model`` at flat k-points, checked
    (:func:`check_model_values`); one ``hamiltonian_and_gradient`` call where the model has it."""
    both = getattr(model, "hamiltonian_and_gradient", None)
    hamiltonian, gradient = both(kx, ky, kz) if callable(both) else (
        model.hamiltonian(kx, ky, kz), model.hamiltonian_gradient(kx, ky, kz))
    n_bands = int(model.n_bands)
    check_model_values(model, (kx, ky, kz), {"H(k)": (hamiltonian, (None, n_bands, n_bands)),
                                             "dH/dk": (gradient, (3, None, n_bands, n_bands))})
    return hamiltonian, gradient


def model_label(model) -> str:
    """How errors name a model: its ``name`` and the class that implements it."""
    cls = type(model)
    return f"{getattr(model, 'name', cls.__name__)!r} ({cls.__module__}.{cls.__qualname__})"


def check_model_values(model, k, arrays, hermitian_tol=1e-10) -> None:
    """Raise :class:`qmdipole.models.ModelError` unless every array a model returned is of the
    expected shape, finite at every k-point and, for matrices, Hermitian (or, for d-vectors, real).

    ``arrays`` maps a label to ``(array, shape)``, where ``shape`` has ``None`` at the k-point axis:
    ``(None, nb, nb)`` for H(k), ``(3, None, nb, nb)`` for ∂H/∂k, ``(3, None)`` for d(k). Hermitian
    means |M − M†| ≤ ``hermitian_tol`` · max(1, max |M| over the batch) element-wise. The first
    bad k-point is named, so that a singular point of a model (a k/|k| term at k = 0) is found.
    """
    from .models import ModelError  # models does not import geometry: no cycle

    n_points = len(np.ravel(k[0]))
    for label, (array, shape) in arrays.items():
        array = np.asarray(array)
        axis = shape.index(None)
        expected = shape[:axis] + (n_points,) + shape[axis + 1:]
        if array.shape != expected:
            raise ModelError(f"model {model_label(model)}: {label} has shape {array.shape} for "
                             f"{n_points} k-points, expected {expected} (is n_bands right?)")
        bad, what = None, ""
        if axis == len(shape) - 3:  # matrices (the last two axes): finite, Hermitian to round-off
            batch = array.shape[:-2]
            matrices = np.ascontiguousarray(array.reshape((-1,) + array.shape[-2:]), complex)
            misfit2, finite = np.empty(len(matrices)), np.empty(len(matrices), bool)
            scale2 = _matrix_misfits(matrices, misfit2, finite)
            limit2 = hermitian_tol**2 * max(scale2, 1.0)
            if not finite.all():
                bad, what = ~finite.reshape(batch), "is not finite"
            elif misfit2.max(initial=0.0) > limit2:
                bad, what = misfit2.reshape(batch) > limit2, "is not Hermitian"
        elif not np.isfinite(array).all():
            bad, what = ~np.isfinite(array), "is not finite"
        elif np.iscomplexobj(array) and np.any(array.imag):  # d-vector components
            bad, what = array.imag != 0, "is not real"
        if bad is not None:
            points = np.moveaxis(bad, axis, 0).reshape(n_points, -1).any(axis=1)
            first = int(np.argmax(points))
            where = ", ".join(f"{c} = {float(np.ravel(v)[first]):.6g}" for c, v in zip("xyz", k))
            raise ModelError(f"model {model_label(model)}: {label} {what} at "
                             f"{int(points.sum())} of {n_points} k-points, the first at k = ({where})")


@njit(cache=True, nogil=True)
def _matrix_misfits(matrices, misfit2, finite):
    """Per matrix M of ``matrices`` (n, nb, nb): max |M_ab − conj(M_ba)|² (``misfit2``) and
    whether every element is finite (``finite``), in one pass; returns max |M_ab|² of them all."""
    scale2 = 0.0
    for k in range(matrices.shape[0]):
        worst, ok = 0.0, True
        for a in range(matrices.shape[1]):
            for b in range(a, matrices.shape[2]):
                x, y = matrices[k, a, b], matrices[k, b, a]
                if not (np.isfinite(x.real) and np.isfinite(x.imag) and np.isfinite(y.real)
                        and np.isfinite(y.imag)):
                    ok = False
                    continue
                d_re, d_im = x.real - y.real, x.imag + y.imag  # x − conj(y)
                worst = max(worst, d_re * d_re + d_im * d_im)
                scale2 = max(scale2, x.real * x.real + x.imag * x.imag,
                             y.real * y.real + y.imag * y.imag)
        misfit2[k], finite[k] = worst, ok
    return scale2


def resolve_method(model, method="auto") -> str:
    """The geometry route for ``model``: ``auto`` picks the closed form for d·σ models."""
    if method == "auto":
        return "closed_form" if hasattr(model, "d_vector") else "sum_over_states"
    if method == "closed_form" and not hasattr(model, "d_vector"):
        raise ValueError("tabulate.method 'closed_form' needs a two-band model with d_vector(); "
                         "use 'sum_over_states'")
    if method not in ("closed_form", "sum_over_states"):
        raise ValueError(
            f"tabulate.method must be auto, closed_form or sum_over_states; got {method!r}")
    return method
