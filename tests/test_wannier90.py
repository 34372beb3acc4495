"""Tests of qmdipole.wannier90: Wannier90 files in and out, the Bloch sum with centres, ∂H/∂k.

Independent routes: the lattice valley model's hoppings written out by hand from its sines and
cosines; the Bloch sum as an explicit loop over (R, m, n); central finite differences of H(k);
the gauge relation H(k + G) = D_G† H(k) D_G; a split hopping written out as separate R vectors.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from checks import assert_gradient_matches_finite_differences

from qmdipole.geometry import band_geometry
from qmdipole.models import PAULI, LatticeValleyModel, ModelError
from qmdipole.wannier90 import (
    Wannier90Error,
    Wannier90Model,
    hoppings_from_hamiltonian,
    read_centres,
    read_hr,
    read_wsvec,
    seed_files,
    write_centres,
    write_hr,
)

FIELDS = ("energy", "velocity", "quantum_metric", "berry_curvature")
VALLEY = dict(delta=1.0, vprime=0.7, tau=-1, v=1.3, mass=1.9, lattice_constant=1.0)
LATTICE = np.array([[3.0, 0.0, 0.0], [1.2, 2.7, 0.0], [0.4, -0.5, 3.3]])  # Å, not orthogonal
HALF_R = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, -1, 2)]  # R; −R is added


def random_arrays(seed=3, nb=4):
    """Random Hermitian H(R) (H(−R) = H(R)†) on R = 0, ±HALF_R; centres inside the cell."""
    rng = np.random.default_rng(seed)
    r_vectors = [(0, 0, 0)]
    a = rng.normal(size=(nb, nb)) + 1j * rng.normal(size=(nb, nb))
    hoppings = [0.3 * (a + a.conj().T) + np.diag(np.linspace(-4, 4, nb))]
    for r in HALF_R:
        h = 0.4 * (rng.normal(size=(nb, nb)) + 1j * rng.normal(size=(nb, nb)))
        r_vectors += [r, tuple(-x for x in r)]
        hoppings += [h, h.conj().T]
    centres = rng.uniform(0, 1, size=(nb, 3)) @ LATTICE
    return np.array(hoppings), np.array(r_vectors), centres


def random_k(n=40, seed=5, scale=1.5):
    return np.random.default_rng(seed).uniform(-scale, scale, size=(3, n))


def assert_geometry_equal(first, second, k, atol=1e-12):
    g1 = band_geometry(first, *k, method="sum_over_states")
    g2 = band_geometry(second, *k, method="sum_over_states")
    for field in FIELDS:
        np.testing.assert_allclose(g1[field], g2[field], rtol=0, atol=atol, err_msg=field)


# ------------------------------------------------------------------------------------------
# built-in model → files → model
# ------------------------------------------------------------------------------------------

def test_valley_hoppings_are_the_written_sines_and_cosines():
    """sin(k a)/a = (e^{ika} − e^{−ika})/(2ia), (1 − cos k a) = 1 − (e^{ika} + e^{−ika})/2."""
    p, a = VALLEY, 0.8
    model = LatticeValleyModel(**{**p, "lattice_constant": a})
    hoppings, r_vectors = hoppings_from_hamiltonian(model, a * np.eye(3), n=6)
    got = {tuple(r): h for r, h in zip(r_vectors.tolist(), hoppings)}
    one, sx, sy, sz = np.eye(2), PAULI[0], PAULI[1], PAULI[2]
    expected = {(0, 0, 0): (p["delta"] + 1 / (p["mass"] * a * a)) * sz}
    for sign in (1, -1):
        expected[(sign, 0, 0)] = sign * p["v"] * p["tau"] / (2j * a) * sx
        expected[(0, sign, 0)] = sign * p["v"] / (2j * a) * sy
        expected[(0, 0, sign)] = sign * p["vprime"] / (2j * a) * one - sz / (2 * p["mass"] * a * a)
    assert sorted(got) == sorted(expected)
    for r, h in expected.items():
        np.testing.assert_allclose(got[r], h, rtol=0, atol=1e-14, err_msg=str(r))


def test_too_small_fft_grid_is_refused():
    with pytest.raises(ModelError, match="increase n"):
        hoppings_from_hamiltonian(LatticeValleyModel(**VALLEY), np.eye(3), n=2)
    with pytest.raises(ModelError, match="even"):
        hoppings_from_hamiltonian(LatticeValleyModel(**VALLEY), np.eye(3), n=5)


def test_round_trip_of_the_lattice_valley_model(tmp_path):
    model = LatticeValleyModel(**VALLEY)
    hoppings, r_vectors = hoppings_from_hamiltonian(model, np.eye(3), n=8)
    hr, centres = tmp_path / "valley_hr.dat", tmp_path / "valley_centres.xyz"
    write_hr(hr, hoppings, r_vectors)
    write_centres(centres, np.zeros((2, 3)), atoms=[("Bi", (0.5, 0.5, 0.5))])
    loaded = Wannier90Model.from_files(hr, centres, lattice_vectors=np.eye(3))
    np.testing.assert_array_equal(read_hr(hr).hoppings, hoppings)  # repr-exact numbers

    k = random_k(seed=11, scale=np.pi)
    np.testing.assert_allclose(loaded.hamiltonian(*k), model.hamiltonian(*k), rtol=0, atol=1e-12)
    np.testing.assert_allclose(loaded.hamiltonian_gradient(*k), model.hamiltonian_gradient(*k),
                               rtol=0, atol=1e-12)
    assert_geometry_equal(loaded, model, k)
    # batch shapes are kept
    grid = k[:, :12].reshape(3, 3, 4)
    assert loaded.hamiltonian(*grid).shape == (3, 4, 2, 2)
    assert loaded.hamiltonian_gradient(*grid).shape == (3, 3, 4, 2, 2)

    record = json.loads(json.dumps(loaded.describe()))
    assert record["files"]["hr_file"]["sha256"] == hashlib.sha256(hr.read_bytes()).hexdigest()
    assert record["n_bands"] == 2 and record["lattice_vectors"] == np.eye(3).tolist()


def test_lattice_vectors_come_from_tb_dat_or_a_clear_error(tmp_path):
    hoppings, r_vectors, _ = random_arrays()
    hr = tmp_path / "seed_hr.dat"
    write_hr(hr, hoppings, r_vectors)
    with pytest.raises(Wannier90Error, match="give lattice_vectors"):
        Wannier90Model.from_files(hr)
    rows = "\n".join(" ".join(f"{x:.17e}" for x in a) for a in LATTICE)
    (tmp_path / "seed_tb.dat").write_text(f" written today\n{rows}\n           4\n")
    assert set(seed_files(hr)) == {"tb_file"}
    model = Wannier90Model.from_files(hr)
    np.testing.assert_array_equal(model.lattice_vectors, LATTICE)
    np.testing.assert_allclose(model.reciprocal_vectors @ LATTICE.T, 2 * np.pi * np.eye(3),
                               atol=1e-13)
    assert "tb_file" in model.describe()["files"]


# ------------------------------------------------------------------------------------------
# the Bloch sum with centres
# ------------------------------------------------------------------------------------------

def test_bloch_sum_is_the_written_sum_over_r_m_n():
    hoppings, r_vectors, centres = random_arrays()
    ndegen = np.where(np.abs(r_vectors).sum(axis=1) == 4, 2, 1)  # ±(1, −1, 2): weight 1/2
    model = Wannier90Model(hoppings, r_vectors, LATTICE, ndegen=ndegen, centres=centres)
    k = random_k(n=5).T
    for kpt, h in zip(k, model.hamiltonian(*k.T)):
        expected = np.zeros((4, 4), complex)
        for r, block, weight in zip(r_vectors, hoppings, ndegen):
            for m in range(4):
                for n in range(4):
                    d = r @ LATTICE + centres[n] - centres[m]
                    expected[m, n] += np.exp(1j * kpt @ d) * block[m, n] / weight
        np.testing.assert_allclose(h, expected, rtol=0, atol=1e-12)


def test_gradient_matches_finite_differences():
    hoppings, r_vectors, centres = random_arrays()
    model = Wannier90Model(hoppings, r_vectors, LATTICE, centres=centres)
    assert_gradient_matches_finite_differences(model, random_k(), atol=1e-8)


def test_both_matrices_at_once_are_the_two_calls():
    hoppings, r_vectors, centres = random_arrays()
    model = Wannier90Model(hoppings, r_vectors, LATTICE, centres=centres)
    k = random_k()
    h, gradient = model.hamiltonian_and_gradient(*k)
    np.testing.assert_array_equal(h, model.hamiltonian(*k))
    np.testing.assert_array_equal(gradient, model.hamiltonian_gradient(*k))


def test_hermitian_and_periodic_up_to_the_centre_gauge():
    hoppings, r_vectors, centres = random_arrays()
    model = Wannier90Model(hoppings, r_vectors, LATTICE, centres=centres)
    k = random_k()
    h = model.hamiltonian(*k)
    np.testing.assert_allclose(h, np.conj(np.swapaxes(h, -1, -2)), rtol=0, atol=1e-13)
    g = np.array([1, -2, 1]) @ model.reciprocal_vectors
    shifted = model.hamiltonian(*(k + g[:, None]))
    gauge = np.exp(1j * centres @ g)  # D_G = diag(e^{iG·τ})
    np.testing.assert_allclose(shifted, np.conj(gauge)[:, None] * h * gauge, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.eigvalsh(shifted), np.linalg.eigvalsh(h), atol=1e-12)
    assert np.abs(shifted - h).max() > 0.1  # the centres are off the origin: the gauge is there


def test_common_shift_of_all_centres_changes_nothing():
    hoppings, r_vectors, centres = random_arrays()
    model = Wannier90Model(hoppings, r_vectors, LATTICE, centres=centres)
    moved = Wannier90Model(hoppings, r_vectors, LATTICE, centres=centres + [0.7, -1.1, 2.3])
    k = random_k()
    np.testing.assert_allclose(moved.hamiltonian(*k), model.hamiltonian(*k), rtol=0, atol=1e-12)
    assert_geometry_equal(moved, model, k)


def test_moving_one_centre_changes_the_metric_but_not_the_energies():
    hoppings, r_vectors, centres = random_arrays()
    model = Wannier90Model(hoppings, r_vectors, LATTICE, centres=centres)
    moved_centres = centres.copy()
    moved_centres[1] += [0.9, 0.0, -0.4]
    moved = Wannier90Model(hoppings, r_vectors, LATTICE, centres=moved_centres)
    k = random_k()
    g1 = band_geometry(model, *k, method="sum_over_states")
    g2 = band_geometry(moved, *k, method="sum_over_states")
    np.testing.assert_allclose(g2["energy"], g1["energy"], atol=1e-12)  # a unitary D(k)
    assert np.abs(g2["quantum_metric"] - g1["quantum_metric"]).max() > 1e-2


# ------------------------------------------------------------------------------------------
# wsvec
# ------------------------------------------------------------------------------------------

SPLITS = {  # (R, m, n) -> shifts T (0-based m, n); the partner (−R, n, m) gets −T
    ((1, 0, 0), 0, 1): [(0, 0, 0), (-3, 0, 0)],
    ((1, 0, 0), 2, 0): [(0, 0, 0), (-3, 0, 0), (0, 3, 0)],
    ((1, 1, 0), 3, 3): [(0, -3, 0), (-3, 0, 0)],
}


def write_wsvec_by_hand(path, r_vectors, nb, splits):
    """Wannier90's wsvec.dat: blocks 'R m n' (m outer, n inner), count, shifts."""
    full = dict(splits)
    for (r, m, n), shifts in splits.items():
        full[(tuple(-x for x in r), n, m)] = [tuple(-t for t in s) for s in shifts]
    lines = ["## written on 01Jan2000 at 00:00:00 with use_ws_distance=.true."]
    for r in map(tuple, r_vectors.tolist()):
        for m in range(nb):
            for n in range(nb):
                shifts = full.get((r, m, n), [(0, 0, 0)])
                lines += ["%5d%5d%5d%5d%5d" % (*r, m + 1, n + 1), "%5d" % len(shifts)]
                lines += ["%5d%5d%5d" % s for s in shifts]
    path.write_text("\n".join(lines) + "\n")
    return full


def test_wsvec_split_equals_the_hopping_written_out(tmp_path):
    hoppings, r_vectors, centres = random_arrays()
    nb = hoppings.shape[1]
    hr, ws = tmp_path / "w_hr.dat", tmp_path / "w_wsvec.dat"
    write_hr(hr, hoppings, r_vectors)
    write_centres(tmp_path / "w_centres.xyz", centres)
    full = write_wsvec_by_hand(ws, r_vectors, nb, SPLITS)
    assert set(seed_files(hr)) == {"centres_file", "wsvec_file"}
    split = Wannier90Model.from_files(hr, tmp_path / "w_centres.xyz", ws, lattice_vectors=LATTICE)

    # the same hoppings with every split element written at its own R + T
    terms = {}
    for r, block in zip(map(tuple, r_vectors.tolist()), hoppings):
        for m in range(nb):
            for n in range(nb):
                shifts = full.get((r, m, n), [(0, 0, 0)])
                for t in shifts:
                    target = tuple(np.add(r, t))
                    terms.setdefault(target, np.zeros((nb, nb), complex))
                    terms[target][m, n] += block[m, n] / len(shifts)
    written = Wannier90Model(np.array(list(terms.values())), np.array(list(terms)), LATTICE,
                             centres=centres)
    plain = Wannier90Model(hoppings, r_vectors, LATTICE, centres=centres)
    k = random_k()
    np.testing.assert_allclose(split.hamiltonian(*k), written.hamiltonian(*k), rtol=0, atol=1e-12)
    np.testing.assert_allclose(split.hamiltonian_gradient(*k), written.hamiltonian_gradient(*k),
                               rtol=0, atol=1e-12)
    assert np.abs(split.hamiltonian(*k) - plain.hamiltonian(*k)).max() > 1e-2
    # on the 3×3×3 grid the shifts (multiples of 3) are invisible
    grid = (np.array([[0, 1, 2], [2, 2, 1], [1, 0, 1]]) / 3) @ split.reciprocal_vectors
    np.testing.assert_allclose(split.hamiltonian(*grid.T), plain.hamiltonian(*grid.T),
                               rtol=0, atol=1e-12)


def test_wsvec_errors_name_file_and_line(tmp_path):
    hoppings, r_vectors, _ = random_arrays(nb=2)
    ws = tmp_path / "w_wsvec.dat"
    write_wsvec_by_hand(ws, r_vectors, 2, {})
    lines = ws.read_text().splitlines()
    ws.write_text("\n".join(lines[:-3]) + "\n")  # the last (R, m, n) block is missing
    with pytest.raises(Wannier90Error, match=r"no block for \(R, m, n\)"):
        read_wsvec(ws)
    ws.write_text("\n".join(lines[:-1]) + "\n")  # the last shift line is missing
    with pytest.raises(Wannier90Error, match=rf"line {len(lines)}: file ends before shift 1"):
        read_wsvec(ws)
    ws.write_text("\n".join(lines[:2] + ["    0"] + lines[3:]) + "\n")
    with pytest.raises(Wannier90Error, match=r"line 3: the shift count .* must be ≥ 1"):
        read_wsvec(ws)


# ------------------------------------------------------------------------------------------
# bad input: every error names the file, the line and the problem
# ------------------------------------------------------------------------------------------

@pytest.fixture
def hr_lines(tmp_path):
    """A valid 2-band, 11-R seedname_hr.dat: header lines 1-3, ndegen on line 4, rows 5-48.

    Block i (R = 0, (1, 0, 0), (−1, 0, 0), …) is lines 5 + 4i … 8 + 4i, rows (m, n) = (1, 1),
    (2, 1), (1, 2), (2, 2).
    """
    hoppings, r_vectors, _ = random_arrays(nb=2)
    path = tmp_path / "bad_hr.dat"
    write_hr(path, hoppings, r_vectors)
    lines = path.read_text().splitlines()
    assert len(lines) == 4 + 11 * 4
    return path, lines


def _expect(path, lines, pattern, **kwargs):
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(Wannier90Error, match=pattern) as info:
        read_hr(path, **kwargs)
    assert str(path) in str(info.value)


def test_valid_file_reads_back(hr_lines):
    path, _ = hr_lines
    data = read_hr(path, mp_grid=(11, 1, 1))
    hoppings, r_vectors, _ = random_arrays(nb=2)
    np.testing.assert_array_equal(data.hoppings, hoppings)
    np.testing.assert_array_equal(data.r_vectors, r_vectors)


def test_truncated_file(hr_lines):
    path, lines = hr_lines
    _expect(path, lines[:-3], r"line 46: file ends before row 42 of nrpts·num_wann² = 44")


def test_wrong_header_counts(hr_lines):
    path, lines = hr_lines
    _expect(path, lines[:2] + ["10"] + lines[3:], r"line 4: more degeneracies than nrpts = 10")
    _expect(path, lines[:2] + ["12"] + lines[3:], r"line 5: more degeneracies than nrpts = 12")
    _expect(path, lines + ["  0 0 0 1 1 0.5 0.0"], r"line 49: more rows than nrpts·num_wann²")
    _expect(path, lines[:1] + ["3"] + lines[2:],
            r"line 49: file ends before row 45 of nrpts·num_wann² = 99 "
            r"\(nrpts = 11, num_wann = 3\)")


def test_non_hermitian_pair(hr_lines):
    path, lines = hr_lines
    # line 11 = block 1 (R = (1, 0, 0)), row 3: (m, n) = (1, 2); partner −R: block 2, (2, 1)
    fields = lines[10].split()
    assert fields[:5] == ["1", "0", "0", "1", "2"]
    fields[5] = repr(float(fields[5]) + 0.01)
    _expect(path, lines[:10] + [" ".join(fields)] + lines[11:],
            r"line 11: H is not Hermitian: H_1,2\(R = \(1, 0, 0\)\) .* conj H_2,1"
            r"\(−R = \(-1, 0, 0\)\) .*\(row at line 14\)")


def test_degeneracy_sum(hr_lines):
    path, lines = hr_lines
    _expect(path, lines[:3] + ["    2" + lines[3][5:]] + lines[4:],
            r"line 4: Σ_R 1/ndegen\(R\) = 10.5 is not an integer")
    _expect(path, lines, r"line 4: Σ_R 1/ndegen\(R\) = 11 differs from the 8 k-points of "
                         r"mp_grid", mp_grid=(2, 2, 2))


def test_non_numeric_and_misplaced_rows(hr_lines):
    path, lines = hr_lines
    bad = lines[:19] + [lines[19].replace(lines[19].split()[6], "abc")] + lines[20:]
    _expect(path, bad, r"line 20: Re\(H\) Im\(H\) must be finite numbers, got .*abc")
    bad = lines[:19] + ["    1.0" + lines[19][4:]] + lines[20:]
    _expect(path, bad, r"line 20: R1 R2 R3 m n must be integers")
    _expect(path, lines[:19] + [lines[19] + " 7"] + lines[20:], r"line 20: expected 7 fields")
    # rows 2 and 3 of a block swapped
    _expect(path, lines[:5] + [lines[6], lines[5]] + lines[7:],
            r"line 6: \(m, n\) = \(1, 2\) where Wannier90's order .* has \(2, 1\)")
    # block 2 (lines 13-16) relabelled as R = (1, 0, 0), the R of block 1 (lines 9-12)
    relabelled = [" ".join(["1", "0", "0"] + line.split()[3:]) for line in lines[12:16]]
    _expect(path, lines[:12] + relabelled + lines[16:],
            r"line 13: R = \(1, 0, 0\) repeats the block at line 9")


def test_centres_file_errors(tmp_path):
    path = tmp_path / "c_centres.xyz"
    write_centres(path, np.ones((3, 2 + 1)), atoms=[("Se", (0.0, 0.0, 1.0))])
    assert read_centres(path).shape == (3, 3)
    with pytest.raises(Wannier90Error, match=r"line 6: 3 Wannier centres \('X' rows\) but "
                                             r"num_wann = 2"):
        read_centres(path, num_wann=2)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(["5"] + lines[1:]) + "\n")
    with pytest.raises(Wannier90Error, match=r"line 1: the count 5 differs from the 4 rows"):
        read_centres(path)
    path.write_text("\n".join(lines[:3] + ["X 0.1 zz 0.3"] + lines[4:]) + "\n")
    with pytest.raises(Wannier90Error, match=r"c_centres.xyz, line 4: x y z must be finite"):
        read_centres(path)


def test_model_checks_its_arrays():
    hoppings, r_vectors, centres = random_arrays()
    with pytest.raises(Wannier90Error, match="centres"):
        Wannier90Model(hoppings, r_vectors, LATTICE, centres=centres[:3])
    with pytest.raises(Wannier90Error, match="linearly dependent"):
        Wannier90Model(hoppings, r_vectors, [[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    with pytest.raises(Wannier90Error, match="linearly dependent"):
        Wannier90Model(hoppings, r_vectors, np.zeros((3, 3)))
    with pytest.raises(Wannier90Error, match=r"R = \(1, 0, 0\) has no partner −R"):
        Wannier90Model(hoppings[:2], r_vectors[:2], LATTICE)
    broken = hoppings.copy()
    broken[0, 0, 1] += 0.5
    with pytest.raises(Wannier90Error, match=r"not Hermitian: H_1,2\(R = \(0, 0, 0\)\)"):
        Wannier90Model(broken, r_vectors, LATTICE)


def test_hand_written_file_puts_each_row_at_its_m_n(tmp_path):
    """Wannier90's layout typed by hand: H_mn(R) = ⟨m0|H|nR⟩, m fastest inside a block."""
    rows = {(0, 0, 0): [(1, 1, 1.0, 0.0), (2, 1, 0.0, -0.5), (1, 2, 0.0, 0.5), (2, 2, -1.0, 0.0)],
            (1, 0, 0): [(1, 1, 0.1, 0.0), (2, 1, 0.3, 0.2), (1, 2, 0.7, 0.0), (2, 2, 0.0, 0.0)],
            (-1, 0, 0): [(1, 1, 0.1, 0.0), (2, 1, 0.7, 0.0), (1, 2, 0.3, -0.2), (2, 2, 0.0, 0.0)]}
    text = " written by hand\n 2\n 3\n    1    2    2\n" + "".join(
        f"{r[0]:5d}{r[1]:5d}{r[2]:5d}{m:5d}{n:5d}{re:12.6f}{im:12.6f}\n"
        for r, block in rows.items() for m, n, re, im in block)
    path = tmp_path / "hand_hr.dat"
    path.write_text(text)
    data = read_hr(path, mp_grid=(2, 1, 1))
    assert data.r_vectors.tolist() == [[0, 0, 0], [1, 0, 0], [-1, 0, 0]]
    assert data.ndegen.tolist() == [1, 2, 2]
    assert data.hoppings[0, 0, 1] == 0.5j and data.hoppings[0, 1, 0] == -0.5j
    assert data.hoppings[1, 1, 0] == 0.3 + 0.2j and data.hoppings[1, 0, 1] == 0.7
    # H(k) along x with lattice constant 2 Å: ndegen 2 halves the ±x hoppings
    model = Wannier90Model(data.hoppings, data.r_vectors, 2 * np.eye(3), ndegen=data.ndegen)
    kx = 0.37
    e = np.exp(2j * kx)
    h12 = 0.5j + 0.5 * (0.7 * e + (0.3 - 0.2j) / e)
    expected = np.array([[1 + 0.1 * e.real, h12], [np.conj(h12), -1]])
    np.testing.assert_allclose(model.hamiltonian(kx, 0.0, 0.0), expected, atol=1e-15)


def test_blocks_of_k_points_give_the_same_result(monkeypatch):
    hoppings, r_vectors, centres = random_arrays()
    model = Wannier90Model(hoppings, r_vectors, LATTICE, centres=centres)
    k = random_k(n=50)
    whole = model.hamiltonian_gradient(*k), model.hamiltonian(*k)
    monkeypatch.setattr("qmdipole.wannier90._BLOCK_ELEMENTS", 7 * len(model.r_vectors))
    np.testing.assert_allclose(model.hamiltonian_gradient(*k), whole[0], rtol=0, atol=1e-13)
    np.testing.assert_allclose(model.hamiltonian(*k), whole[1], rtol=0, atol=1e-13)
