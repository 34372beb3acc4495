"""Throughput of the band-geometry engine (k-points per second), single thread and full I/O.

(a) ``band_geometry(..., method="closed_form")`` on the valley model (Eq. 14, Fig. 4 valley 1);
(b) ``band_geometry(..., method="sum_over_states")`` on the same model;
(c) a plain reference written here: H and ∂H from the model, batched ``numpy.linalg.eigh``, and a
    straightforward einsum sum over states for v, g and Ω;
all on the same k-points (random in the model's k-window), in chunks of 65 536 points, one thread
(BLAS/OpenMP pinned to 1 thread before numpy is imported). Each figure is the median of several
repeats. Prints the ratios a/c and b/c (targets: >= 20 and >= 2).

(d) Many bands: a random coupled tight-binding model (``Wannier90Model``, nb = 4, 8, 16, all
R-vectors with |R_i| <= 1) on the same k-points: the Bloch sums of H and ∂H/∂k as the tabulation
makes them (``model_matrices``: one pass, values checked), LAPACK's batched ``eigh`` alone, and
``sum_over_states_geometry`` (eigh + the compiled velocity matrices and sums), repeats
interleaved; prints the ratio geometry/eigh (target <= 1.5) and (Bloch sums + geometry)/eigh.

Then the full ``tabulate.write_table`` (Dask, 2 threads, NetCDF I/O) throughput on a cylindrical
grid of the same model.

Run: ``python benchmarks/tabulate.py [--points N] [--repeats R] [--table-points M]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from measure import random_tight_binding  # noqa: E402

from qmdipole.geometry import (  # noqa: E402
    band_geometry,
    model_matrices,
    sum_over_states_geometry,
)
from qmdipole.kgrid import build_kgrid  # noqa: E402
from qmdipole.models import ValleyModel  # noqa: E402
from qmdipole.tabulate import write_table  # noqa: E402

CHUNK = 65_536
MODEL = ValleyModel(delta=1.0, vprime=1.0, tau=1, v=1.0, mass=1.9)  # Fig. 4, valley 1
WINDOW = MODEL.k_window((-4.0, 4.0), 16.0)  # (rho_max, kz_min, kz_max), as the pipeline's grid


def k_points(n: int, seed: int = 0) -> np.ndarray:
    """(3, n) random k-points in the model's cylinder."""
    rho_max, kz_min, kz_max = WINDOW
    rng = np.random.default_rng(seed)
    rho = rho_max * np.sqrt(rng.uniform(size=n))
    phi = rng.uniform(0, 2 * np.pi, n)
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), rng.uniform(kz_min, kz_max, n)])


def reference_geometry(model, kx, ky, kz) -> dict:
    """Plain route: batched eigh + einsum sum over states (no degeneracy handling)."""
    h = model.hamiltonian(kx, ky, kz)  # (N, nb, nb)
    dh = model.hamiltonian_gradient(kx, ky, kz)  # (3, N, nb, nb)
    energy, u = np.linalg.eigh(h)
    vel = np.einsum("nam,inab,nbl->inml", u.conj(), dh, u, optimize=True)  # ⟨m|∂_iH|l⟩
    gap = energy[:, :, None] - energy[:, None, :]
    nb = energy.shape[1]
    off = ~np.eye(nb, dtype=bool)
    inv_gap2 = np.zeros_like(gap)
    inv_gap2[:, off] = 1.0 / gap[:, off] ** 2
    qgt = np.einsum("inml,jnlm,nml->nmij", vel, vel, inv_gap2)  # Q_ij,m
    curvature = -2 * np.stack([qgt[..., 1, 2].imag, qgt[..., 2, 0].imag, qgt[..., 0, 1].imag], -1)
    return {
        "energy": energy,
        "velocity": np.einsum("inmm->nmi", vel).real,
        "quantum_metric": qgt.real,
        "berry_curvature": curvature,
    }


def throughput(fn, k: np.ndarray, repeats: int) -> tuple[float, list[float]]:
    """Median k-points/s of ``fn(kx, ky, kz)`` over chunks of CHUNK points, and all repeats."""
    n = k.shape[1]
    fn(*k[:, :CHUNK])  # warm-up (first-call allocations, imports)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for s in range(0, n, CHUNK):
            fn(*k[:, s:s + CHUNK])
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates), rates


def check_reference(k: np.ndarray) -> float:
    """Largest relative deviation of the reference from band_geometry (sanity of the benchmark)."""
    ref = reference_geometry(MODEL, *k)
    geo = band_geometry(MODEL, *k, method="closed_form")
    worst = 0.0
    for name in ("energy", "velocity", "quantum_metric", "berry_curvature"):
        mine = np.moveaxis(geo[name], -1, 0)  # (N, nb, ...)
        scale = np.abs(mine).max()
        worst = max(worst, float(np.abs(mine - ref[name]).max() / scale))
    return worst


def many_band_rates(n_bands: int, n_points: int, repeats: int) -> dict[str, float]:
    """Median k-points/s of the Bloch sum, eigh alone and the geometry, repeats interleaved."""
    model = random_tight_binding(n_bands)
    k = np.random.default_rng(1).uniform(-np.pi, np.pi, (3, n_points))
    h, dh = model_matrices(model, *k)
    sum_over_states_geometry(h[:8], dh[:, :8])  # warm-up: load the compiled kernel
    steps = {
        "Bloch sum H, dH/dk (checked, one pass)": lambda: model_matrices(model, *k),
        "numpy.linalg.eigh alone": lambda: np.linalg.eigh(h),
        "sum_over_states_geometry": lambda: sum_over_states_geometry(h, dh),
    }
    times = {label: [] for label in steps}
    for _ in range(repeats):
        for label, step in steps.items():
            start = time.perf_counter()
            step()
            times[label].append(time.perf_counter() - start)
    return {label: n_points / statistics.median(t) for label, t in times.items()}


def table_throughput(n_points: int, threads: int) -> tuple[float, float, int]:
    """write_table on a cylindrical grid of about n_points: (k-points/s, seconds, bytes on disk)."""
    rho_max, kz_min, kz_max = WINDOW
    n_rho = max(int(round((n_points / 4 / 2) ** 0.5)), 2)
    grid = build_kgrid(MODEL, "cylindrical", (n_rho, 4, max(n_points // (4 * n_rho), 2)),
                       ((0.0, rho_max), None, (kz_min, kz_max)))
    tmp = Path(tempfile.mkdtemp(prefix="qmd_bench_"))
    try:
        path = tmp / "table.nc"
        start = time.perf_counter()
        write_table(MODEL, grid, path, threads=threads, progress=False)
        elapsed = time.perf_counter() - start
        size = path.stat().st_size
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return grid.size / elapsed, elapsed, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=16 * CHUNK, help="k-points per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--table-points", type=int, default=2_000_000)
    parser.add_argument("--table-repeats", type=int, default=3)
    args = parser.parse_args()

    k = k_points(args.points)
    print(f"valley model {MODEL.describe()}; {args.points} random k-points in the window "
          f"rho <= {WINDOW[0]:.3f}, kz in [{WINDOW[1]:.3f}, {WINDOW[2]:.3f}]; chunks of {CHUNK}; "
          f"1 thread; median of {args.repeats}")
    print(f"reference vs closed form: max relative deviation {check_reference(k[:, :CHUNK]):.2e}")

    closed, closed_all = throughput(
        lambda *kk: band_geometry(MODEL, *kk, method="closed_form"), k, args.repeats)
    general, general_all = throughput(
        lambda *kk: band_geometry(MODEL, *kk, method="sum_over_states"), k, args.repeats)
    plain, plain_all = throughput(lambda *kk: reference_geometry(MODEL, *kk), k, args.repeats)
    h_chunk = MODEL.hamiltonian(*k[:, :CHUNK])  # the same H for every chunk: eigh alone
    eigh_only, eigh_all = throughput(lambda *kk: np.linalg.eigh(h_chunk), k[:, :4 * CHUNK],
                                     args.repeats)

    def show(label, value, every):
        spread = f"[{min(every) / 1e6:.3f} .. {max(every) / 1e6:.3f}]"
        print(f"  {label:<44s} {value / 1e6:8.3f} M k-points/s  {spread}")

    show("(a) band_geometry closed_form", closed, closed_all)
    show("(b) band_geometry sum_over_states", general, general_all)
    show("(c) reference eigh + einsum sum over states", plain, plain_all)
    show("    (of which numpy.linalg.eigh alone)", eigh_only, eigh_all)
    print(f"  ratio a/c = {closed / plain:6.1f}   (target >= 20)")
    print(f"  ratio b/c = {general / plain:6.1f}   (target >= 2)")

    for n_bands in (4, 8, 16):
        n_points = args.points // n_bands**2 * 4
        rates = many_band_rates(n_bands, n_points, args.repeats)
        print(f"  (d) {n_bands} bands, {n_points} k-points, median of {args.repeats}:")
        for label, rate in rates.items():
            print(f"      {label:<40s} {rate / 1e3:10.1f} k k-points/s")
        eigh = rates["numpy.linalg.eigh alone"]
        geometry = eigh / rates["sum_over_states_geometry"]
        whole = geometry + eigh / rates["Bloch sum H, dH/dk (checked, one pass)"]
        print(f"      time geometry / eigh alone = {geometry:.2f}   (target <= 1.5); "
              f"with the Bloch sums (the whole tabulation's work) = {whole:.2f}")

    rates = []
    for _ in range(args.table_repeats):
        rate, elapsed, size = table_throughput(args.table_points, threads=2)
        rates.append(rate)
        print(f"  write_table, 2 threads, {args.table_points:.2g} points: {elapsed:6.2f} s, "
              f"{rate / 1e6:.3f} M k-points/s, {size / 2**20:.0f} MiB")
    if rates:
        print(f"  write_table (NetCDF I/O, 2 threads): median "
              f"{statistics.median(rates) / 1e6:.3f} M k-points/s")


if __name__ == "__main__":
    main()
