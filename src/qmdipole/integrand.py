"""Band-resolved quantities per block of k-points: the one layer every reduction is built on.

A :class:`BandSlab` holds one block of k-points (a slab of a geometry table, or k-points at
which a model is evaluated) and gives, per band m and node, as arrays ``(nb, …, *S)``:

* ε_m (``energy``), v_i,m = ∂ε_m/∂k_i (``velocity``), g_ij,m (``metric``, Eq. 7) and Ω_m
  (``berry_curvature``), read (or evaluated) only when asked for, then kept;
* the quantum metric dipole G_ijk,m = v_i,m g_jk,m (:meth:`BandSlab.dipole`, the one place it
  is formed), with i, j, k Cartesian indices or directions (v_d = d·v, g_ab = a·g·b);
* Fermi-surface node weights W_m with Σ_nodes W_m F ≈ ∫ d³k F f′(ε_m) (:meth:`BandSlab.fermi_weights`;
  T = 0: tetrahedron δ-weights of the whole grid, T > 0: their thermal average), summed over
  the nodes the slab owns (:meth:`BandSlab.own`);
* δ-function integrals ∫ d³k h δ(ε − λ) over the slab's cells at many levels λ at once
  (:meth:`BandSlab.fermi_surface`: linear tetrahedra, Jacobian included, O(h²), no smearing);
* the band-pair q-derivatives X′, M, M′ of the NDD (:meth:`BandSlab.pair_derivatives`,
  :mod:`qmdipole.band_pairs`).

Consecutive slabs of a table share one node, so that every cell belongs to exactly one slab
and every node is owned by exactly one: summing a reduction over :func:`table_slabs` gives the
whole grid's. :func:`over_slabs` works on several slabs at once (threads: the compiled kernels
and LAPACK release the GIL) and returns the results in slab order, so that sums taken in that
order are the same for any thread count. Units are the table's (ħ = 1; k in the model's units).

A new response is a few lines. The Berry curvature dipole at T = 0,

    D_ij(μ) = Σ_m ∫ d³k/(2π)³ v_i,m Ω_j,m δ(ε_m − μ),

every (i, j) and every μ at once::

    import numpy as np
    from qmdipole.integrand import table_slabs

    def berry_curvature_dipole(table, mu):
        d = np.zeros((3, 3, len(mu)))
        for slab in table_slabs(table):
            values = slab.velocity[:, :, None] * slab.berry_curvature[:, None, :]  # (nb, i, j, *S)
            d += slab.fermi_surface(values.reshape(len(values), 9, *values.shape[3:]),
                                    mu).sum(axis=0).reshape(3, 3, -1)
        return d / (2 * np.pi) ** 3

(``tests/test_integrand.py`` checks it against the symmetries that force it to vanish.)
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from typing import NamedTuple

import numpy as np
import xarray as xr

from .band_pairs import combined
from .band_pairs import pair_derivatives as model_pair_derivatives
from .fermi import fermi_surface_weights, grid_mirror
from .geometry import band_geometry
from .kgrid import KGrid, points_per_slab, slabs
from .tetrahedron import TetrahedronGrid, occupation_vanishes

#: the band quantities a slab reads, and the k-point coordinates
QUANTITIES = ("energy", "velocity", "quantum_metric", "berry_curvature", "kx", "ky", "kz")
#: the BandSlab property holding each band quantity once read whole
_PROPERTIES = {"energy": "energy", "velocity": "velocity", "quantum_metric": "metric",
               "berry_curvature": "berry_curvature"}


class PairDerivatives(NamedTuple):
    """ε_m (nb, *S), X′_m = −v_q̂,m (nb, *S), M_mn and M′_mn (nb, nb, *S) at q = 0 (light along
    q̂ polarised along ê; :mod:`qmdipole.band_pairs`), ε from the same diagonalisation as M."""

    energy: np.ndarray
    x_prime: np.ndarray
    m: np.ndarray
    m_prime: np.ndarray


class BandSlab:
    """Band-resolved quantities of one block of k-points of shape S (see the module docstring).

    ``read(name, index)`` gives a quantity of :data:`QUANTITIES` as an array ``(nb, …, *S)``
    (k-point coordinates ``S``), or with ``index`` (a tuple of Cartesian indices) its component
    ``[:, *index]`` alone: the ``*_along`` methods read only the components a direction needs
    (a hyperslab of a table: one ninth of the metric for an axis-aligned light geometry).
    ``grid``: the block as a k-grid of its own (its cells are the block's
    cells; None: scattered k-points, no δ-integrals), ``mirror`` the tetrahedron split of the
    whole grid (:func:`qmdipole.fermi.grid_mirror`), ``owned`` the slice of the first k-axis
    whose nodes the block owns for point sums, ``model`` the model for quantities a table does
    not hold (pair derivatives of more than two bands), ``weights(mu, T)`` the whole grid's
    Fermi-surface node weights (nb, *S) of this block.
    """

    def __init__(self, read: Callable[[str], np.ndarray], *, grid: KGrid | None = None,
                 mirror=None, owned: slice = slice(None), model=None,
                 weights: Callable[[float, float], np.ndarray] | None = None):
        self._read, self.grid, self.mirror, self.owned = read, grid, mirror, owned
        self.model, self._weights = model, weights
        self._components = {}  # (name, index) → a component read alone

    @cached_property
    def energy(self) -> np.ndarray:
        """ε_m, (nb, *S)."""
        return self._read("energy")

    @cached_property
    def velocity(self) -> np.ndarray:
        """v_i,m = ∂ε_m/∂k_i, (nb, 3, *S)."""
        return self._read("velocity")

    @cached_property
    def metric(self) -> np.ndarray:
        """Quantum metric g_ij,m (Eq. 7), (nb, 3, 3, *S)."""
        return self._read("quantum_metric")

    @cached_property
    def berry_curvature(self) -> np.ndarray:
        """Berry curvature Ω_m = (Ω^{yz}, Ω^{zx}, Ω^{xy}), (nb, 3, *S)."""
        return self._read("berry_curvature")

    @cached_property
    def kpoints(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cartesian k_x, k_y, k_z of the nodes, each S."""
        return tuple(self._read(c) for c in ("kx", "ky", "kz"))

    @cached_property
    def jacobian(self) -> np.ndarray:
        """|∂k/∂u| at the nodes (S): d³k = J d³u in the grid's own coordinates u."""
        return np.asarray(self._grid("jacobian").jacobian())

    @cached_property
    def _cells(self) -> TetrahedronGrid:
        grid = self._grid("a Fermi-surface integral")
        return TetrahedronGrid(grid.axes, grid.periods, mirror=self.mirror)

    def _grid(self, what: str) -> KGrid:
        if self.grid is None:
            raise ValueError(f"{what} needs a k-grid, but this block holds scattered k-points "
                             "(a model evaluated at given k): build it with table_slabs")
        return self.grid

    def _component(self, name: str, index: tuple) -> np.ndarray:
        """quantity[:, *index] (nb, *S): a view of the whole quantity if it is held (read by its
        property), else read alone and kept."""
        whole = self.__dict__.get(_PROPERTIES[name])
        if whole is not None:
            return whole[(slice(None),) + index]
        key = (name, index)
        if key not in self._components:
            self._components[key] = self._read(name, index)
        return self._components[key]

    def velocity_along(self, d) -> np.ndarray:
        """v_d,m = Σ_a d_a v_a,m (nb, *S); ``d`` a Cartesian index or a direction."""
        return combined(d, lambda i: self._component("velocity", (i,)))

    def metric_along(self, a, b) -> np.ndarray:
        """g_ab,m = Σ_j b_j Σ_i a_i g_ij,m (nb, *S); ``a``, ``b`` Cartesian indices or
        directions."""
        return combined(b, lambda j: combined(
            a, lambda i: self._component("quantum_metric", (i, j))))

    def dipole(self, i, j, k, out=None) -> np.ndarray:
        """Quantum metric dipole G_ijk,m = v_i,m g_jk,m (nb, *S); i, j, k Cartesian indices or
        directions (G_{d,ab} = (d·v)(a·g·b)). ``out``: an array (nb, *S) to write it into."""
        return np.multiply(self.velocity_along(i), self.metric_along(j, k), out=out)

    def own(self, values) -> np.ndarray:
        """The nodes of ``values`` (…, *S) that this block owns, for point sums over a table."""
        values = np.asarray(values)
        axis = values.ndim - len(self.energy.shape[1:])
        return values[(slice(None),) * axis + (self.owned,)]

    def fermi_weights(self, mu: float, temperature: float) -> np.ndarray:
        """Node weights W_m (nb, *S) with Σ_nodes W_m F ≈ ∫ d³k F f′(ε_m) over the whole table
        (sum over :meth:`own` nodes of every slab); f′ = −δ(ε − μ) at T = 0."""
        if self._weights is None:
            raise ValueError("Fermi-surface weights need the whole k-grid: build the block "
                             "with table_slabs")
        return self._weights(mu, temperature)

    def fermi_surface(self, values, levels, energy=None, between=None, hat=False) -> np.ndarray:
        """I[n, v, l] = ∫ d³k values[n, v](k) δ(energy[n](k) − levels[l]) over the block's
        cells (linear tetrahedra, Jacobian included; zero for a block of one node).

        ``values`` (n, nv, *S); ``energy`` (n, *S), by default the bands' ε_m (n = nb);
        ``levels`` sorted; ``between``: None, or per n None or ``(low, high, mu, T)`` (each
        low, high of shape S): times the occupation factor f(low) − f(high) of a band pair at
        μ and T, integrated on each section (T = 0: only where low < mu < high;
        :meth:`qmdipole.tetrahedron.TetrahedronGrid.integrals`). ``hat``: the integrals against
        the hat functions of the levels instead of δ(energy − level) (a spectral density's
        weights for the linear interpolation of a kernel on the levels; ditto). Returns
        (n, nv, nl)."""
        grid = self._grid("a Fermi-surface integral")
        energy = self.energy if energy is None else energy
        values = np.asarray(values)
        out = np.zeros(values.shape[:2] + (len(levels),))
        if grid.shape[0] < 2:  # a block of one node has no cells
            return out
        for n, (e, v) in enumerate(zip(energy, values)):
            clip = None if between is None else between[n]
            if not v.any() or (clip is not None and occupation_vanishes(*clip)):
                continue  # zero on the whole slab: its integrals are zero
            out[n] = self._cells.integrals(e, v, levels, clip, weight=self.jacobian, hat=hat)
        return out

    def pair_derivatives(self, q_hat, e_hat) -> PairDerivatives:
        """X′, M, M′ of every ordered band pair (light along ``q_hat`` polarised along ``e_hat``).

        Two bands (0 = v, 1 = c): from ε, v, g, with X′_m = −v_q̂,m, M_mn = x² g_êê and
        M′_mn = −2 ε_mn v_ê,n g_êq̂ = −2 ε_mn G_{ê,êq̂,n} (either band's metric is the pair
        metric). More bands: from the model's H and ∂H at the nodes
        (:func:`qmdipole.band_pairs.pair_derivatives`)."""
        shape = self.energy.shape
        if shape[0] == 2:
            energy = self.energy
            x = energy[1] - energy[0]
            g_ee, dipole = self.metric_along(e_hat, e_hat), self.dipole(e_hat, e_hat, q_hat)
            zero = np.zeros_like(x)
            m = x**2 * np.stack([[zero, g_ee[0]], [g_ee[1], zero]])
            m_prime = 2 * x * np.stack([[zero, dipole[1]], [-dipole[0], zero]])
            return PairDerivatives(energy, -self.velocity_along(q_hat), m, m_prime)
        if self.model is None:
            raise ValueError(f"the pair derivatives of {shape[0]} bands need the model's H and "
                             "dH/dk: build the block with a model")
        energy, x_prime, m, m_prime = model_pair_derivatives(self.model, *self.kpoints,
                                                             q_hat, e_hat)
        return PairDerivatives(*(a.reshape(a.shape[:-1] + shape[1:])
                                 for a in (energy, x_prime, m, m_prime)))


def table_slabs(ds: xr.Dataset, slab_points: int = 2**18, model=None) -> Iterator[BandSlab]:
    """The slabs of a geometry table (:func:`qmdipole.kgrid.slabs`, ``slab_points`` two-band
    k-points each, :func:`qmdipole.kgrid.points_per_slab`), each a :class:`BandSlab` that reads
    its variables from ``ds`` when asked (a lazy table of :func:`qmdipole.tabulate.tabulate`:
    computed once per slab, all of them, for its fields come from one model evaluation);
    ``model``: for pair derivatives of more than two bands."""
    grid = KGrid.from_dataset(ds)
    mirror = grid_mirror(grid)
    weights = {}  # (μ, T) → the whole grid's Fermi-surface node weights, shared by the slabs
    lock = threading.Lock()  # slabs may be worked on in threads (over_slabs)

    def whole_grid_weights(mu, temperature):
        key = (float(mu), float(temperature))
        with lock:
            if key not in weights:
                weights[key] = np.stack([fermi_surface_weights(grid, e, mu, temperature)
                                         for e in ds["energy"].values])
        return weights[key]

    for index, sub, owned in slabs(grid, points_per_slab(slab_points, ds.sizes["band"])):
        part = ds.isel(k1=index)
        if any(variable.chunks is not None for variable in part.variables.values()):
            part = part.compute()  # not per component: each read would tabulate the slab again

        def read(name, index=(), part=part):
            if name not in part.variables:
                raise KeyError(f"the geometry table has no variable {name!r} "
                               f"(it has {', '.join(sorted(map(str, part.data_vars)))})")
            return part[name][(slice(None),) + index].values

        def slab_weights(mu, temperature, index=index):
            return whole_grid_weights(mu, temperature)[:, index]

        yield BandSlab(read, grid=sub, mirror=mirror, owned=owned, model=model,
                       weights=slab_weights)


def model_slabs(model, kx, ky, kz, slab_points: int = 2**18) -> Iterator[tuple[slice, BandSlab]]:
    """``model`` at the k-points ``kx, ky, kz`` (each of shape (n, *rest)) in blocks of whole
    rows, at most ``slab_points`` k-points each (at least one row): yields ``(rows, slab)``,
    ``rows`` the slice of the first axis, ``slab`` a :class:`BandSlab` of shape (rows, *rest)
    whose ε, v, g, Ω come from one :func:`qmdipole.geometry.band_geometry` call."""
    kx, ky, kz = np.broadcast_arrays(*(np.asarray(c, float) for c in (kx, ky, kz)))
    n, rest = kx.shape[0], kx.shape[1:]
    per_block = max(int(slab_points) // max(int(np.prod(rest)), 1), 1)
    for start in range(0, n, per_block):
        rows = slice(start, min(start + per_block, n))
        k = {"kx": kx[rows], "ky": ky[rows], "kz": kz[rows]}
        shape = k["kx"].shape
        geometry = {}

        def read(name, index=(), k=k, shape=shape, geometry=geometry):
            if name in k:
                return k[name]
            if not geometry:
                geometry.update(band_geometry(model, *(c.ravel() for c in k.values())))
            value = geometry[name][(slice(None),) + index]
            return value.reshape(value.shape[:-1] + shape)

        yield rows, BandSlab(read, model=model)


def available_threads() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def over_slabs(work: Callable[[BandSlab], object], slabs: Iterable[BandSlab],
               threads: int = 1) -> Iterator:
    """``work(slab)`` of every slab, yielded in slab order, ``threads`` slabs at a time (at most
    ``threads`` + 1 in memory). A caller that sums the results in this order gets the same
    numbers for any thread count."""
    if threads <= 1:
        yield from map(work, slabs)
        return
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        pending = collections.deque()
        for slab in slabs:
            pending.append(pool.submit(work, slab))
            if len(pending) > threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
