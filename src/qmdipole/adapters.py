"""Tight-binding models of PythTB and TBmodels as qmdipole models, with exact ∂H/∂k.

Both libraries are optional (``pip install 'qmdipole[adapters]'``). A model is converted to its
real-space hoppings H_mn(R), orbital positions τ_m and lattice vectors, and becomes a
:class:`~qmdipole.wannier90.Wannier90Model`, whose Bloch sum gives H(k) and ∂H/∂k exactly:

    H_mn(k) = Σ_R e^{i k·(R + τ_n − τ_m)} H_mn(R),
    ∂H_mn/∂k_i = Σ_R i (R + τ_n − τ_m)_i e^{i k·(R + τ_n − τ_m)} H_mn(R),

with k Cartesian (inverse units of the lattice vectors) and R, τ Cartesian. The orbital positions
are in the phase: this is PythTB's own convention (its ``_gen_ham`` at reduced k κ = k·A^T/2π) and
TBmodels' ``hamilton(κ, convention=1)``; its eigenvectors are the cell-periodic parts u_nk in the
tight-binding approximation (diagonal position operator), so the quantum metric and Berry curvature
are the physical ones. TBmodels' default ``convention=2`` leaves τ out of the phase: the same
energies, another gauge, whose geometry differs unless all orbitals sit at one point.

Energies are in the library model's unit, lengths in its lattice vectors' unit.
"""

from __future__ import annotations

import importlib

import numpy as np

from .wannier90 import Wannier90Model


def _require(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{module} is not installed: pip install {module}, or install "
                          f"qmdipole with the adapters extra: pip install 'qmdipole[adapters]'"
                          ) from err


def _model(hoppings: dict, lattice, positions_reduced, source: dict) -> Wannier90Model:
    """A Wannier90Model from {R (3 ints): H(R) (nb, nb)}, lattice rows and reduced positions."""
    r_vectors = np.array(sorted(hoppings), int).reshape(-1, 3)
    blocks = np.array([hoppings[tuple(r)] for r in r_vectors.tolist()], complex)
    lattice = np.asarray(lattice, float)
    centres = np.asarray(positions_reduced, float) @ lattice
    return Wannier90Model(blocks, r_vectors, lattice, centres=centres, sources=source)


def from_pythtb(tb) -> Wannier90Model:
    """A PythTB ``tb_model`` (PythTB 1.x) with three periodic directions, spinless or spinful.

    On-site energies and hoppings t_ij(R) (each with its conjugate t_ji(−R) = t_ij(R)*, which PythTB
    adds) become H(R); spinful models (``nspin=2``) have basis index 2·orbital + spin, as
    PythTB orders its Hamiltonian. Lattice vectors and orbital positions are PythTB's
    (``get_lat()``, ``get_orb()`` in reduced coordinates).

    Raises
    ------
    ImportError
        PythTB is not installed.
    ValueError
        The model does not have three periodic directions in three dimensions.
    """
    pythtb = _require("pythtb")
    if not isinstance(tb, pythtb.tb_model):
        raise TypeError(f"from_pythtb needs a pythtb.tb_model, got {type(tb).__name__}")
    if tb._dim_k != 3 or tb._dim_r != 3:
        raise ValueError(f"from_pythtb needs a 3-D model with 3 periodic directions (dim_r = dim_k"
                         f" = 3), got dim_r = {tb._dim_r}, dim_k = {tb._dim_k}")
    spin = int(tb._nspin)
    n = tb.get_num_orbitals() * spin
    hoppings: dict[tuple, np.ndarray] = {}

    def add(r, i, j, amplitude):
        block = hoppings.setdefault(tuple(int(x) for x in r), np.zeros((n, n), complex))
        block[i * spin:(i + 1) * spin, j * spin:(j + 1) * spin] += amplitude

    for i, energy in enumerate(tb._site_energies):
        add((0, 0, 0), i, i, np.asarray(energy, complex).reshape(spin, spin) if spin == 2
            else complex(energy))
    for amplitude, i, j, r in tb._hoppings:
        amplitude = np.asarray(amplitude, complex).reshape(spin, spin)
        add(r, i, j, amplitude)
        add(-np.asarray(r), j, i, amplitude.conj().T)
    positions = np.repeat(tb.get_orb(), spin, axis=0)
    return _model(hoppings, tb.get_lat(), positions,
                  {"pythtb": {"version": getattr(pythtb, "__version__", "unknown")}})


def from_tbmodels(model, lattice_vectors=None) -> Wannier90Model:
    """A TBmodels ``Model`` in three dimensions.

    TBmodels stores half the hoppings (H(k) = Σ_R t(R) e^{2πi κ·R} + h.c.): H(R) = t(R) + t(−R)†.
    ``lattice_vectors`` (rows) default to the model's unit cell ``uc``; positions are its ``pos``
    (reduced coordinates).

    Raises
    ------
    ImportError
        TBmodels is not installed.
    ValueError
        The model is not 3-D, or has no unit cell and no ``lattice_vectors`` are given.
    """
    tbmodels = _require("tbmodels")
    if not isinstance(model, tbmodels.Model):
        raise TypeError(f"from_tbmodels needs a tbmodels.Model, got {type(model).__name__}")
    if model.dim != 3:
        raise ValueError(f"from_tbmodels needs a 3-D model, got dim = {model.dim}")
    lattice = model.uc if lattice_vectors is None else lattice_vectors
    if lattice is None:
        raise ValueError("the TBmodels model has no unit cell (uc): give lattice_vectors (rows)")
    hoppings: dict[tuple, np.ndarray] = {}
    for r, matrix in model.hop.items():
        matrix = np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, complex)
        for vector, block in ((r, matrix), (tuple(-x for x in r), matrix.conj().T)):
            key = tuple(int(x) for x in vector)
            hoppings[key] = hoppings.get(key, 0) + block
    return _model(hoppings, lattice, model.pos,
                  {"tbmodels": {"version": getattr(tbmodels, "__version__", "unknown")}})
