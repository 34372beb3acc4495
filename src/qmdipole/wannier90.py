"""Wannier90 tight-binding models: read and write ``seedname_hr.dat`` & co.; exact H(k), ∂H/∂k.

Files (Wannier90 3.x formats; energies in eV, lengths in Å, indices 1-based in files and 0-based
in arrays):

* ``seedname_hr.dat`` — line 1: a comment; line 2: num_wann; line 3: nrpts; then the nrpts
  degeneracies ndegen(R) (Wannier90 writes 15 per line); then nrpts·num_wann² rows
  ``R1 R2 R3 m n Re Im`` with H_mn(R) = ⟨w_m,0|H|w_n,R⟩ for the lattice vector R = Σ_i R_i a_i:
  one block of num_wann² rows per R, m running fastest inside a block (n = 1: m = 1…num_wann,
  then n = 2, …). Σ_R 1/ndegen(R) is the number of k-points of the Wannier90 grid (mp_grid).
* ``seedname_centres.xyz`` — XYZ: a count line, a comment, then ``X x y z`` rows (the Wannier
  centres τ_m, Cartesian Å), optionally followed by atom rows ``Symbol x y z``.
* ``seedname_wsvec.dat`` (``use_ws_distance = .true.``) — line 1: a comment; then for every
  (R, m, n) a line ``R1 R2 R3 m n``, a line with a count d and d lines ``T1 T2 T3`` of
  superlattice shifts (lattice units): H_mn(R)/ndegen(R) is spread equally over the d vectors
  R + T, as Wannier90's own interpolation does.
* ``seedname_tb.dat`` — line 1: a comment; lines 2-4: the lattice vectors a1, a2, a3 in Å (only
  these are read here).

Bloch sum, the convention WITH centres ("convention II"); k is Cartesian in Å⁻¹:

    H_mn(k) = Σ_R e^{i k·(R + τ_n − τ_m)} H_mn(R)/ndegen(R),
    ∂H_mn/∂k_i = Σ_R i (R + τ_n − τ_m)_i e^{i k·(R + τ_n − τ_m)} H_mn(R)/ndegen(R).

Its eigenvectors are the cell-periodic Bloch functions u_nk in the tight-binding approximation
(position operator diagonal in the Wannier basis, ⟨w_m0|r|w_nR⟩ = τ_m δ_mn δ_R0), so the quantum
metric and Berry curvature of :mod:`qmdipole.geometry` are the physical ones. Then
H(k + G) = D_G† H(k) D_G with D_G = diag(e^{i G·τ_m}): energies are periodic in k, eigenvectors
up to that gauge. ``centres=None`` puts every centre at the origin (H(k) periodic, Wannier90's
"convention I"), which changes g and Ω unless all centres coincide.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .models import Model, ModelError

HERMITIAN_RTOL = 1e-6  # tolerance of H(−R) = H(R)†, relative to max |H|
_BLOCK_ELEMENTS = 1 << 20  # k-points × R-vectors per block of the Bloch sum (16 MB of phases)


class Wannier90Error(ModelError):
    """A Wannier90 file or model is malformed; the message names the file, line and problem."""


class HrData(NamedTuple):
    """Contents of ``seedname_hr.dat``: H_mn(R) (nR, nb, nb) in eV, R (nR, 3), ndegen (nR,)."""

    hoppings: np.ndarray
    r_vectors: np.ndarray
    ndegen: np.ndarray
    comment: str


class WsVec(NamedTuple):
    """Contents of ``seedname_wsvec.dat``: for (R, m, n) the shifts ``shifts[iR, m, n, :count]``."""

    path: str
    r_vectors: np.ndarray  # (nR, 3)
    counts: np.ndarray  # (nR, nb, nb), d ≥ 1
    shifts: np.ndarray  # (nR, nb, nb, max d, 3), lattice units


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------

class _TextFile:
    """The non-blank lines of a text file after line ``skip``, with 1-based line numbers."""

    def __init__(self, path, skip: int = 1):
        self.path = str(path)
        try:
            self.lines = Path(path).read_text().splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise Wannier90Error(f"{path}: cannot read: {err}") from err
        self._rows = ((i + 1, line.split()) for i, line in enumerate(self.lines)
                      if i >= skip and line.strip())

    def error(self, lineno: int, problem: str) -> Wannier90Error:
        return Wannier90Error(f"{self.path}, line {lineno}: {problem}")

    def next(self, what: str) -> tuple[int, list[str]]:
        """The next non-blank line as (line number, fields); a clear error at the end."""
        try:
            return next(self._rows)
        except StopIteration:
            raise self.error(len(self.lines) + 1, f"file ends before {what} (truncated?)") from None

    def rest(self):
        """The remaining non-blank lines."""
        return self._rows

    def integers(self, lineno: int, fields: list[str], what: str) -> list[int]:
        try:
            return [int(f) for f in fields]
        except ValueError:
            raise self.error(lineno, f"{what} must be integers, got {' '.join(fields)!r}") from None

    def floats(self, lineno: int, fields: list[str], what: str) -> list[float]:
        try:
            values = [float(f) for f in fields]
        except ValueError:
            values = [np.nan]
        if not np.all(np.isfinite(values)):
            raise self.error(lineno, f"{what} must be finite numbers, got {' '.join(fields)!r}")
        return values

    def single_int(self, what: str, minimum: int) -> tuple[int, int]:
        lineno, fields = self.next(what)
        if len(fields) != 1:
            raise self.error(lineno, f"expected {what} alone on the line, got {' '.join(fields)!r}")
        (value,) = self.integers(lineno, fields, what)
        if value < minimum:
            raise self.error(lineno, f"{what} must be ≥ {minimum}, got {value}")
        return lineno, value


def read_hr(path, mp_grid=None, hermitian_rtol: float = HERMITIAN_RTOL) -> HrData:
    """Parse and validate ``seedname_hr.dat`` (format in the module docstring).

    Raises :class:`Wannier90Error` naming the file, the line and the problem for: a truncated
    file or a row count that differs from the header, non-integer or non-numeric fields, rows out
    of Wannier90's (R, n, m) order, a repeated R, degeneracies with Σ 1/ndegen not an integer
    (or ≠ the product of ``mp_grid`` when given), and H(−R) ≠ H(R)† beyond ``hermitian_rtol``
    × max |H| (or a missing −R).
    """
    f = _TextFile(path)
    comment = f.lines[0] if f.lines else ""
    _, nb = f.single_int("num_wann", 1)
    _, nrpts = f.single_int("nrpts", 1)

    ndegen, ndegen_line = [], None
    while len(ndegen) < nrpts:
        lineno, fields = f.next(f"degeneracy {len(ndegen) + 1} of nrpts = {nrpts}")
        ndegen_line = ndegen_line or lineno
        if len(ndegen) + len(fields) > nrpts:
            raise f.error(lineno, f"more degeneracies than nrpts = {nrpts} (wrong nrpts, or a "
                                  f"missing degeneracy?): {' '.join(fields)!r}")
        ndegen += f.integers(lineno, fields, "degeneracies ndegen(R)")
    ndegen = np.array(ndegen)
    if (ndegen < 1).any():
        raise f.error(ndegen_line, f"degeneracy {int(np.argmax(ndegen < 1)) + 1} is "
                                   f"{ndegen[ndegen < 1][0]}; ndegen(R) must be ≥ 1")
    _check_grid_size(f, ndegen_line, ndegen, mp_grid)

    n_rows = nrpts * nb * nb
    counts = f"nrpts·num_wann² = {n_rows} (nrpts = {nrpts}, num_wann = {nb})"
    rows = list(itertools.islice(f.rest(), n_rows))
    if len(rows) < n_rows:
        raise f.error(len(f.lines) + 1, f"file ends before row {len(rows) + 1} of {counts} "
                                        "(truncated?)")
    lines = np.array([lineno for lineno, _ in rows])
    widths = np.array([len(fields) for _, fields in rows])
    if (widths != 7).any():
        i = int(np.argmax(widths != 7))
        raise f.error(lines[i], f"expected 7 fields 'R1 R2 R3 m n Re(H) Im(H)', found "
                                f"{widths[i]}: {' '.join(rows[i][1])!r}")
    ints = _convert(f, [fields[:5] for _, fields in rows], lines, int, "R1 R2 R3 m n")
    values = _convert(f, [fields[5:] for _, fields in rows], lines, float, "Re(H) Im(H)")
    for lineno, fields in f.rest():
        raise f.error(lineno, f"more rows than {counts}: {' '.join(fields)!r}")

    # rows of block iR: n = row // nb, m = row % nb (m fastest); store as [iR, m, n]
    ints, lines = ints.reshape(nrpts, nb * nb, 5), lines.reshape(nrpts, nb * nb)
    r_vectors = ints[:, 0, :3]
    order = np.arange(nb * nb)
    expected = np.stack([order % nb + 1, order // nb + 1], axis=-1)
    bad = (ints[:, :, :3] != r_vectors[:, None]).any(-1)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise f.error(lines[i, j], f"R = {_ints(ints[i, j, :3])} inside the block of "
                                   f"R = {_ints(r_vectors[i])} (line {lines[i, 0]}); each block "
                                   f"of num_wann² = {nb * nb} rows holds one R")
    bad = (ints[:, :, 3:] != expected).any(-1)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise f.error(lines[i, j], f"(m, n) = {_ints(ints[i, j, 3:])} where Wannier90's order "
                                   f"(m fastest, then n) has {_ints(expected[j])}")
    _, first, inverse = np.unique(r_vectors, axis=0, return_index=True, return_inverse=True)
    owner = first[inverse.ravel()]  # the first block with the same R
    repeated = np.flatnonzero(owner != np.arange(nrpts))
    if repeated.size:
        i = repeated[0]
        raise f.error(lines[i, 0], f"R = {_ints(r_vectors[i])} repeats the block at line "
                                   f"{lines[owner[i], 0]}")

    hoppings = (values[:, 0] + 1j * values[:, 1]).reshape(nrpts, nb, nb).transpose(0, 2, 1)
    problem = _hermiticity_problem(hoppings, r_vectors, hermitian_rtol)
    if problem:
        i, j, m, n, text = problem
        where = lines.reshape(nrpts, nb, nb)[i, n, m]
        partner = "" if j < 0 else f" (row at line {lines.reshape(nrpts, nb, nb)[j, m, n]})"
        raise f.error(where, text + partner)
    return HrData(np.ascontiguousarray(hoppings), r_vectors.copy(), ndegen, comment)


def _convert(f: _TextFile, table: list[list[str]], lines: np.ndarray, kind: type, what: str):
    """Rows of equally many strings as an array of ``kind``; a bad row is located by its line."""
    try:
        array = np.fromiter(map(kind, itertools.chain.from_iterable(table)), kind)
        if kind is int or np.isfinite(array).all():
            return array.reshape(len(table), -1)
    except ValueError:
        pass
    check = f.integers if kind is int else f.floats  # row by row: raises at the first bad line
    return np.array([check(lineno, fields, what) for fields, lineno in zip(table, lines)], kind)


def _check_grid_size(f: _TextFile, lineno: int, ndegen: np.ndarray, mp_grid) -> None:
    """Σ_R 1/ndegen(R) is the number of k-points of the Wannier90 grid."""
    total = float(np.sum(1.0 / ndegen))
    if abs(total - round(total)) > 1e-8:
        raise f.error(lineno, f"Σ_R 1/ndegen(R) = {total:.10g} is not an integer (it must be "
                              "the number of k-points of the Wannier90 grid)")
    if mp_grid is not None and round(total) != int(np.prod(mp_grid)):
        raise f.error(lineno, f"Σ_R 1/ndegen(R) = {round(total)} differs from the "
                              f"{int(np.prod(mp_grid))} k-points of mp_grid = {list(mp_grid)}")


def _ints(vector) -> tuple[int, ...]:
    """A lattice vector or index pair as a plain tuple, for messages."""
    return tuple(int(x) for x in vector)


def _partners(r_vectors: np.ndarray) -> np.ndarray:
    """Index of −R for every R, −1 where −R is absent."""
    index = {tuple(r): i for i, r in enumerate(r_vectors.tolist())}
    return np.array([index.get(tuple(-x for x in r), -1) for r in r_vectors.tolist()])


def _hermiticity_problem(hoppings, r_vectors, rtol):
    """``None`` if H(−R) = H(R)† within rtol·max|H| for all R, else (iR, i(−R), m, n, message).

    The message names the worst pair; i(−R) is −1 when −R is missing.
    """
    partners = _partners(r_vectors)
    if (partners < 0).any():
        i = int(np.argmax(partners < 0))
        return i, -1, 0, 0, (f"R = {_ints(r_vectors[i])} has no partner −R; a Hermitian H needs "
                             f"H(−R) = H(R)†")
    deviation = np.abs(hoppings - np.conj(hoppings[partners].transpose(0, 2, 1)))
    i, m, n = np.unravel_index(np.argmax(deviation), deviation.shape)
    tol = rtol * np.abs(hoppings).max()
    if deviation[i, m, n] <= tol:
        return None
    j = partners[i]
    return i, j, m, n, (
        f"H is not Hermitian: H_{m + 1},{n + 1}(R = {_ints(r_vectors[i])}) = "
        f"{hoppings[i, m, n]:.6g} but conj H_{n + 1},{m + 1}(−R = {_ints(r_vectors[j])}) = "
        f"{np.conj(hoppings[j, n, m]):.6g} (|difference| {deviation[i, m, n]:.3g} > {tol:.3g})")


def read_centres(path, num_wann: int | None = None) -> np.ndarray:
    """The Wannier centres τ_m (num_wann, 3) in Å: the ``X`` rows of ``seedname_centres.xyz``.

    Raises :class:`Wannier90Error` naming the file and line when the count line disagrees with
    the rows, a row is malformed, or the number of ``X`` rows differs from ``num_wann``.
    """
    f = _TextFile(path, skip=2)
    head = f.lines[0].split() if f.lines else []
    if len(head) != 1:
        raise f.error(1, f"expected the XYZ row count alone on line 1, got {' '.join(head)!r}")
    (count,) = f.integers(1, head, "the XYZ row count")
    rows = list(f.rest())
    if len(rows) != count:
        raise f.error(1, f"the count {count} differs from the {len(rows)} rows after the "
                         "comment line")
    centres = []
    for lineno, fields in rows:
        if len(fields) != 4:
            raise f.error(lineno, f"expected 'Symbol x y z', got {' '.join(fields)!r}")
        if fields[0].upper() == "X":
            centres.append(f.floats(lineno, fields[1:], "x y z"))
    if num_wann is not None and len(centres) != num_wann:
        raise f.error(rows[-1][0], f"{len(centres)} Wannier centres ('X' rows) but num_wann = "
                                   f"{num_wann}")
    return np.array(centres, float).reshape(-1, 3)


def read_wsvec(path) -> WsVec:
    """Parse ``seedname_wsvec.dat``: the superlattice shifts T of every (R, m, n).

    Raises :class:`Wannier90Error` naming the file and line for malformed or repeated blocks,
    counts below 1, and (R, m, n) missing from the complete set R × {1…num_wann}².
    """
    f = _TextFile(path)
    blocks: dict[tuple, tuple[int, list]] = {}
    for lineno, fields in f.rest():
        if len(fields) != 5:
            raise f.error(lineno, f"expected 'R1 R2 R3 m n', got {' '.join(fields)!r}")
        key = tuple(f.integers(lineno, fields, "R1 R2 R3 m n"))
        if min(key[3:]) < 1:
            raise f.error(lineno, f"Wannier indices m, n must be ≥ 1, got {key[3:]}")
        if key in blocks:
            raise f.error(lineno, f"(R, m, n) = {key} repeats the block at line {blocks[key][0]}")
        what = f"the shift count of (R, m, n) = {key} (line {lineno})"
        count_line, count_fields = f.next(what)
        if len(count_fields) != 1:
            raise f.error(count_line, f"expected {what} alone, got {' '.join(count_fields)!r}")
        (count,) = f.integers(count_line, count_fields, what)
        if count < 1:
            raise f.error(count_line, f"{what} must be ≥ 1, got {count}")
        shifts = []
        for t in range(count):
            shift_line, shift = f.next(f"shift {t + 1} of {count} of (R, m, n) = {key}")
            if len(shift) != 3:
                raise f.error(shift_line, f"expected 'T1 T2 T3', got {' '.join(shift)!r}")
            shifts.append(f.integers(shift_line, shift, "T1 T2 T3"))
        blocks[key] = (lineno, shifts)
    if not blocks:
        raise f.error(len(f.lines), "no (R, m, n) blocks")

    keys = np.array(list(blocks))
    r_vectors, r_index = np.unique(keys[:, :3], axis=0, return_inverse=True)
    nb = int(keys[:, 3:].max())
    counts = np.zeros((len(r_vectors), nb, nb), int)
    shifts = np.zeros((len(r_vectors), nb, nb, max(len(s) for _, s in blocks.values()), 3), int)
    for i, (key, (_, block)) in zip(r_index.ravel(), blocks.items()):
        counts[i, key[3] - 1, key[4] - 1] = len(block)
        shifts[i, key[3] - 1, key[4] - 1, :len(block)] = block
    if (counts == 0).any():
        i, m, n = np.argwhere(counts == 0)[0]
        raise Wannier90Error(f"{path}: no block for (R, m, n) = ({_ints(r_vectors[i])}, {m + 1}, "
                             f"{n + 1}); every R needs all num_wann² = {nb * nb} pairs")
    return WsVec(str(path), r_vectors, counts, shifts)


def read_tb_lattice(path) -> np.ndarray:
    """The lattice vectors (3, 3), rows a1, a2, a3 in Å, from lines 2-4 of ``seedname_tb.dat``."""
    f = _TextFile(path)
    rows = []
    for name in ("a1", "a2", "a3"):
        lineno, fields = f.next(f"lattice vector {name}")
        if len(fields) != 3:
            raise f.error(lineno, f"expected lattice vector {name} as 3 numbers in Å, "
                                  f"got {' '.join(fields)!r}")
        rows.append(f.floats(lineno, fields, f"lattice vector {name}"))
    return np.array(rows)


def seed_files(hr_file) -> dict[str, Path]:
    """The companions of ``seed_hr.dat`` that exist beside it.

    Keys ``centres_file`` (``seed_centres.xyz``), ``wsvec_file`` (``seed_wsvec.dat``) and
    ``tb_file`` (``seed_tb.dat``); empty when the name does not end in ``_hr.dat``.
    """
    hr = Path(hr_file)
    if not hr.name.endswith("_hr.dat"):
        return {}
    seed = hr.name[: -len("_hr.dat")]
    names = {"centres_file": "_centres.xyz", "wsvec_file": "_wsvec.dat", "tb_file": "_tb.dat"}
    return {key: hr.with_name(seed + tail) for key, tail in names.items()
            if hr.with_name(seed + tail).is_file()}


def _file_record(path) -> dict:
    """Path and sha256 of a file's contents, for provenance."""
    return {"path": str(path), "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}


# ------------------------------------------------------------------------------------------
# the model
# ------------------------------------------------------------------------------------------

class Wannier90Model(Model):
    """H(k) = Σ_R e^{i k·(R + τ_n − τ_m)} H_mn(R)/ndegen(R) (module docstring), k Cartesian in Å⁻¹.

    ``hoppings`` H_mn(R) (nR, nb, nb) in eV for the integer ``r_vectors`` (nR, 3) in units of the
    ``lattice_vectors`` (rows a1, a2, a3 in Å); ``ndegen`` (nR,) defaults to 1; ``centres`` τ
    (nb, 3) in Å, ``None`` for all at the origin; ``ws_vec`` (:func:`read_wsvec`) spreads each
    hopping over its shifted copies. ``sources`` records file provenance for :meth:`describe`.

    The model stores the equivalent list of effective hoppings (``hoppings``, ``r_vectors``:
    ndegen and the shifts folded in), made exactly Hermitian by H(R) ← [H(R) + H(−R)†]/2 after
    checking that H(−R) = H(R)† within ``hermitian_rtol`` × max |H|.
    """

    name = "wannier90"

    def __init__(self, hoppings, r_vectors, lattice_vectors, ndegen=None, centres=None,
                 ws_vec: WsVec | None = None, *, sources: dict | None = None,
                 hermitian_rtol: float = HERMITIAN_RTOL):
        hoppings = np.asarray(hoppings, complex)
        if hoppings.ndim != 3 or hoppings.shape[1] != hoppings.shape[2] or not hoppings.size:
            raise Wannier90Error(f"hoppings must have shape (nR, nb, nb), got {hoppings.shape}")
        n_r, nb = hoppings.shape[:2]
        r_vectors = _integer_array(r_vectors, (n_r, 3), "r_vectors")
        ndegen = np.ones(n_r, int) if ndegen is None else _integer_array(ndegen, (n_r,), "ndegen")
        if (ndegen < 1).any():
            raise Wannier90Error(f"ndegen must be ≥ 1, got {ndegen[ndegen < 1][0]}")
        lattice = _float_array(lattice_vectors, (3, 3), "lattice_vectors (rows a1, a2, a3 in Å)")
        if abs(np.linalg.det(lattice)) <= 1e-12 * np.abs(lattice).max() ** 3:
            raise Wannier90Error(f"lattice_vectors are linearly dependent: {lattice.tolist()}")
        centres = np.zeros((nb, 3)) if centres is None else _float_array(
            centres, (nb, 3), "centres (num_wann × 3, Å)")
        if not np.isfinite(hoppings).all():
            raise Wannier90Error("hoppings hold non-finite values")

        hoppings = hoppings / ndegen[:, None, None]
        if ws_vec is not None:
            hoppings, r_vectors = _spread_over_shifts(hoppings, r_vectors, ws_vec)
        problem = _hermiticity_problem(hoppings, r_vectors, hermitian_rtol)
        if problem:
            origin = f" (after the shifts of {ws_vec.path})" if ws_vec is not None else ""
            raise Wannier90Error(problem[-1] + origin)
        partners = _partners(r_vectors)
        self.hoppings = 0.5 * (hoppings + np.conj(hoppings[partners].transpose(0, 2, 1)))
        self.r_vectors = r_vectors
        self.n_bands = nb
        self.centres = centres
        self._lattice = lattice
        self._r_cart = r_vectors @ lattice
        self._sources = dict(sources or {})

    @classmethod
    def from_files(cls, hr_file, centres_file=None, wsvec_file=None, lattice_vectors=None,
                   mp_grid=None) -> "Wannier90Model":
        """The model of ``seed_hr.dat`` (+ optional ``seed_centres.xyz``, ``seed_wsvec.dat``).

        ``lattice_vectors`` (rows in Å) default to those of ``seed_tb.dat`` beside ``hr_file``;
        ``mp_grid`` (3 ints), when given, is checked against Σ 1/ndegen.
        """
        hr = read_hr(hr_file, mp_grid=mp_grid)
        sources = {"hr_file": _file_record(hr_file)}
        if lattice_vectors is None:
            tb_file = seed_files(hr_file).get("tb_file")
            if tb_file is None:
                raise Wannier90Error(
                    f"{hr_file}: seedname_hr.dat holds no lattice vectors and no seedname_tb.dat "
                    "lies beside it; give lattice_vectors (rows a1, a2, a3 in Å)")
            lattice_vectors = read_tb_lattice(tb_file)
            sources["tb_file"] = _file_record(tb_file)
        centres = ws_vec = None
        if centres_file is not None:
            centres = read_centres(centres_file, num_wann=hr.hoppings.shape[1])
            sources["centres_file"] = _file_record(centres_file)
        if wsvec_file is not None:
            ws_vec = read_wsvec(wsvec_file)
            sources["wsvec_file"] = _file_record(wsvec_file)
        return cls(hr.hoppings, hr.r_vectors, lattice_vectors, ndegen=hr.ndegen,
                   centres=centres, ws_vec=ws_vec, sources=sources)

    @property
    def lattice_vectors(self) -> np.ndarray:
        """Rows a1, a2, a3 in Å."""
        return self._lattice.copy()

    @property
    def reciprocal_vectors(self) -> np.ndarray:
        """Rows b1, b2, b3 in Å⁻¹ with a_i·b_j = 2π δ_ij."""
        return 2 * np.pi * np.linalg.inv(self._lattice).T

    def describe(self) -> dict:
        """JSON-able parameters: sizes, lattice, centres, source files with their sha256."""
        digest = hashlib.sha256()
        for array in (self.hoppings, self.r_vectors, self._lattice, self.centres):
            digest.update(np.ascontiguousarray(array).tobytes())
        return {"name": self.name, "n_bands": self.n_bands, "n_r_vectors": len(self.r_vectors),
                "lattice_vectors": self._lattice.tolist(), "centres": self.centres.tolist(),
                "files": self._sources, "model_sha256": digest.hexdigest()}

    def hamiltonian(self, kx, ky, kz) -> np.ndarray:
        return self._bloch_sums(kx, ky, kz, gradient=False)[0]

    def hamiltonian_gradient(self, kx, ky, kz) -> np.ndarray:
        return self._bloch_sums(kx, ky, kz, gradient=True)[1]

    def hamiltonian_and_gradient(self, kx, ky, kz) -> tuple[np.ndarray, np.ndarray]:
        """H(k) and ∂H/∂k from one pass of Bloch phases (each as its own call gives it)."""
        return self._bloch_sums(kx, ky, kz, gradient=True)

    def _bloch_sums(self, kx, ky, kz, gradient: bool):
        """H(k) (S + (nb, nb)) and, if ``gradient``, ∂H/∂k ((3,) + S + (nb, nb); else None), in
        blocks of k-points.

        H = D† H_I D with H_I = Σ_R e^{ik·R} H(R) and D = diag(e^{ik·τ}); hence
        ∂_i H = D† (Σ_R i R_i e^{ik·R} H(R)) D + i(τ_n − τ_m)_i H_mn.
        """
        k = np.stack(np.broadcast_arrays(*map(np.asarray, (kx, ky, kz))), axis=-1).astype(float)
        shape, k = k.shape[:-1], k.reshape(-1, 3)
        nb, n_k = self.n_bands, len(k)
        flat = self.hoppings.reshape(len(self.hoppings), nb * nb)
        h_out = np.empty((n_k, nb, nb), complex)
        d_out = np.empty((3, n_k, nb, nb), complex) if gradient else None
        step = max(1, _BLOCK_ELEMENTS // max(len(flat), nb * nb))
        tau = self.centres
        centre_term = 1j * (tau[None, :, :] - tau[:, None, :])  # i(τ_n − τ_m), (nb, nb, 3)
        for start in range(0, n_k, step):
            part = slice(start, start + step)
            phase = np.exp(1j * (k[part] @ self._r_cart.T))  # (B, nR)
            diagonal = np.exp(1j * (k[part] @ tau.T))  # of D, (B, nb)
            # (D† M D)_mn = e^{ik·(τ_n − τ_m)} M_mn: one factor per element, (B, nb, nb)
            gauge = np.conj(diagonal)[:, :, None] * diagonal[:, None, :]
            h = np.multiply((phase @ flat).reshape(-1, nb, nb), gauge, out=h_out[part])
            if not gradient:
                continue
            for i in range(3):
                d_h = ((phase * (1j * self._r_cart[:, i])) @ flat).reshape(-1, nb, nb)
                np.multiply(d_h, gauge, out=d_out[i, part])
                d_out[i, part] += centre_term[:, :, i] * h
        return (h_out.reshape(shape + (nb, nb)),
                None if d_out is None else d_out.reshape((3,) + shape + (nb, nb)))


def _integer_array(values, shape, name) -> np.ndarray:
    array = np.asarray(values)
    if array.shape != shape:
        raise Wannier90Error(f"{name} must have shape {shape}, got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        if not (np.isfinite(array).all() and (array == np.round(array)).all()):
            raise Wannier90Error(f"{name} must be integers")
    return array.astype(int)


def _float_array(values, shape, name) -> np.ndarray:
    array = np.asarray(values, float)
    if array.shape != shape or not np.isfinite(array).all():
        raise Wannier90Error(f"{name} must be finite with shape {shape}, got {array.shape}")
    return array


def _spread_over_shifts(hoppings, r_vectors, ws_vec: WsVec):
    """Effective hoppings with H_mn(R) spread equally over R + T for the shifts T of (R, m, n)."""
    n_r, nb = hoppings.shape[:2]
    if ws_vec.counts.shape[1] != nb:
        raise Wannier90Error(f"{ws_vec.path}: num_wann = {ws_vec.counts.shape[1]} but the "
                             f"hoppings have {nb} bands")
    index = {tuple(r): i for i, r in enumerate(ws_vec.r_vectors.tolist())}
    missing = [tuple(r) for r in r_vectors.tolist() if tuple(r) not in index]
    if missing or len(index) != n_r:
        raise Wannier90Error(f"{ws_vec.path}: its R vectors differ from those of the hoppings "
                             f"(first R without shifts: {missing[0] if missing else 'none'}; "
                             f"{len(index)} vs {n_r} R vectors)")
    rows = np.array([index[tuple(r)] for r in r_vectors.tolist()])
    counts, shifts = ws_vec.counts[rows], ws_vec.shifts[rows]
    i_r, m, n, t = np.nonzero(np.arange(shifts.shape[3]) < counts[..., None])
    vectors = r_vectors[i_r] + shifts[i_r, m, n, t]
    unique, slot = np.unique(vectors, axis=0, return_inverse=True)
    spread = np.zeros((len(unique), nb, nb), complex)
    np.add.at(spread, (slot.ravel(), m, n), hoppings[i_r, m, n] / counts[i_r, m, n])
    return spread, unique


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------

def write_hr(path, hoppings, r_vectors, ndegen=None,
             comment: str = "written by qmdipole.wannier90") -> None:
    """Write H_mn(R) (nR, nb, nb) for ``r_vectors`` (nR, 3) as ``seedname_hr.dat``.

    Wannier90's layout (module docstring) with repr-exact numbers ('%.17e'), so that
    :func:`read_hr` gives back the same floats; ``ndegen`` defaults to 1. A
    :class:`Wannier90Model` is written exactly by ``write_hr(path, model.hoppings,
    model.r_vectors)`` (its hoppings already hold ndegen and the shifts).
    """
    hoppings = np.asarray(hoppings, complex)
    if hoppings.ndim != 3 or hoppings.shape[1] != hoppings.shape[2]:
        raise Wannier90Error(f"hoppings must have shape (nR, nb, nb), got {hoppings.shape}")
    n_r, nb = hoppings.shape[:2]
    r_vectors = _integer_array(r_vectors, (n_r, 3), "r_vectors")
    ndegen = np.ones(n_r, int) if ndegen is None else _integer_array(ndegen, (n_r,), "ndegen")
    if "\n" in comment:
        raise Wannier90Error("the comment of seedname_hr.dat must be one line")
    lines = [comment, f"{nb:12d}", f"{n_r:12d}"]
    lines += ["".join(f"{d:5d}" for d in ndegen[i:i + 15]) for i in range(0, n_r, 15)]
    for r, block in zip(r_vectors, hoppings):
        prefix = " ".join(f"{x:4d}" for x in r)
        lines += [f"{prefix} {m + 1:4d} {n + 1:4d} {block[m, n].real: .17e} "
                  f"{block[m, n].imag: .17e}" for n in range(nb) for m in range(nb)]
    Path(path).write_text("\n".join(lines) + "\n")


def write_centres(path, centres, atoms=(), comment: str = "Wannier centres (Angstrom)") -> None:
    """Write the centres (nb, 3) in Å, then ``atoms`` [(symbol, (x, y, z)), ...], as XYZ."""
    centres = np.asarray(centres, float)
    if centres.ndim != 2 or centres.shape[1] != 3:
        raise Wannier90Error(f"centres must have shape (num_wann, 3), got {centres.shape}")
    rows = [("X", xyz) for xyz in centres] + [(symbol, np.asarray(xyz, float))
                                                for symbol, xyz in atoms]
    lines = [f"{len(rows):6d}", comment.replace("\n", " ")]
    lines += [f"{symbol:<4s}" + "".join(f" {x: .17e}" for x in xyz) for symbol, xyz in rows]
    Path(path).write_text("\n".join(lines) + "\n")


def hoppings_from_hamiltonian(model: Model, lattice_vectors, n: int = 8, drop: float = 1e-14):
    """H(R) of a periodic model given by H(k): ``(hoppings (nR, nb, nb), r_vectors (nR, 3))``.

    H(R) = N⁻³ Σ_k e^{−ik·R} H(k) over the N×N×N grid k = Σ_i (j_i/N) b_i (an FFT), exact for
    models whose hoppings all have |R_i| < N/2 (N = ``n``, even); a hopping on the shell
    R_i = −N/2 means the range is too long and raises :class:`ModelError`. H(R) is made exactly
    Hermitian, entries below ``drop`` (absolute, model units) are zeroed and vanishing R dropped
    (R = 0 is kept). ``model`` must be periodic, H(k + G) = H(k) (centres at the origin).
    """
    if n < 2 or n % 2:
        raise ModelError(f"n must be an even integer ≥ 2, got {n!r}")
    lattice = _float_array(lattice_vectors, (3, 3), "lattice_vectors (rows a1, a2, a3)")
    fractions = np.stack(np.meshgrid(*[np.arange(n) / n] * 3, indexing="ij"), axis=-1)
    k = fractions @ (2 * np.pi * np.linalg.inv(lattice).T)
    h_r = np.fft.fftn(model.hamiltonian(k[..., 0], k[..., 1], k[..., 2]), axes=(0, 1, 2)) / n**3
    r_vectors = np.stack(np.meshgrid(*[np.fft.fftfreq(n, 1 / n).astype(int)] * 3,
                                     indexing="ij"), axis=-1).reshape(-1, 3)
    h_r = h_r.reshape((-1,) + h_r.shape[3:])
    shell = (r_vectors == -n // 2).any(axis=1)
    scale = np.abs(h_r).max()
    if np.abs(h_r[shell]).max() > max(drop, 1e-10 * scale):
        raise ModelError(f"the model has hoppings with |R_i| ≥ n/2 = {n // 2} (or is not "
                         f"periodic on the lattice); increase n")
    r_vectors, h_r = r_vectors[~shell], h_r[~shell]
    partners = _partners(r_vectors)
    h_r = 0.5 * (h_r + np.conj(h_r[partners].transpose(0, 2, 1)))
    h_r[np.abs(h_r) < drop] = 0.0
    keep = np.abs(h_r).max(axis=(1, 2)) > 0
    keep |= ~r_vectors.any(axis=1)
    return h_r[keep], r_vectors[keep]
