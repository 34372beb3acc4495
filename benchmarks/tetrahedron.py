"""Throughput of the linear-tetrahedron Fermi-surface integrator, before (a git revision's NumPy
implementation) and after (the compiled loop of this checkout), side by side in one run.

1. γ-like sums on the cubic-lattice model (qmdipole.models.LatticeValleyModel, valley 1, a = 1):
   N³ Brillouin-zone grid (default 96³, mirrored about k = 0 as the pipeline does), both bands,
   18 integrands (as for γ: v_i G_jk), 801 levels in [−4, 4]: k-points/s per core (CPU time).
2. Cylindrical grid ρ ∈ [0, 10] (300 nodes), φ periodic (4 nodes), k_z ∈ [−6, 6] (1200 nodes),
   ε± = v' k_z ± sqrt(ρ² + (1 + k_z²/3.8)²), h = ρ cos²φ, 801 and 1601 levels: tetrahedra/s and
   (tetrahedron, level) pairs/s; node weights at one level.
3. Cost against the number of levels N_l (upper band of 2., 18 integrands).

Every time is the median of ``--repeats`` runs (CPU time of this process, i.e. per core; wall time
beside it: the machine may be shared); "difference" is max |after − before| / max |before|.

Run: ``python benchmarks/tetrahedron.py`` (``--before REV`` picks the revision, default the last
one with the NumPy implementation; ``--n 64`` a smaller lattice grid; ``--levels 801 3201``)
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import time
from pathlib import Path

import numpy as np

from measure import package_at

from qmdipole import tetrahedron as after
from qmdipole.models import LatticeValleyModel

REPO = Path(__file__).resolve().parents[1]
N_RHO, N_PHI, N_KZ = 300, 4, 1200
V_TILT = 0.5


def load_revision(rev: str | None = None):
    """``qmdipole.tetrahedron`` of git revision ``rev`` (default: the parent of the commit that
    removed the NumPy implementation's ``piecewise_cubic.py``), imported as ``qmdipole_before``."""
    if rev is None:
        removed = subprocess.run(["git", "rev-list", "-1", "HEAD", "--",
                                  "src/qmdipole/piecewise_cubic.py"], cwd=REPO, check=True,
                                 capture_output=True, text=True).stdout.strip()
        rev = f"{removed}^"
    package_at(rev, REPO)
    module = importlib.import_module("qmdipole_before.tetrahedron")
    module.revision = subprocess.run(["git", "rev-parse", "--short", rev], cwd=REPO, check=True,
                                     capture_output=True, text=True).stdout.strip()
    return module


def timed(repeats, func, *args, **kwargs):
    """(result, median CPU time, median wall time) of ``repeats`` calls."""
    cpu, wall = [], []
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        result = func(*args, **kwargs)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return result, float(np.median(cpu)), float(np.median(wall))


def difference(new, old) -> float:
    return float(np.abs(np.asarray(new) - old).max() / np.abs(old).max())


def lattice_case(n: int):
    """Both bands, 18 smooth integrands (Jacobian 1) and the axes of the N³ zone grid."""
    k = np.linspace(-np.pi, np.pi, n, endpoint=False)
    K = np.meshgrid(k, k, k, indexing="ij")
    e0, d = LatticeValleyModel(delta=1.0, vprime=1.0, tau=1, mass=1.9).d_vector(*K)
    gap = np.linalg.norm(d, axis=0)
    values = np.stack([np.cos(K[i]) * np.sin(K[j % 3] + K[2]) * (1 + 0.1 * j)
                       for i in range(3) for j in range(6)])
    return (e0 - gap, e0 + gap), values, (k, k, k), (2 * np.pi,) * 3


def gamma_sums(module, bands, values, axes, periods, levels):
    mirror = module.mirror_points(axes, periods, periodic=True)
    return np.stack([module.fermi_surface_integral(e, values, axes, levels, periods, mirror=mirror)
                     for e in bands])


def count_pairs(energy: np.ndarray, levels: np.ndarray) -> int:
    """(tetrahedron, level) pairs of the cylindrical grid (standard split), counted
    independently of the module (open ρ and k_z axes, periodic φ axis)."""
    e = np.concatenate([energy, energy[:, :1]], axis=1)  # wrap φ
    k = np.searchsorted(levels, e, side="left").astype(np.int32)
    m1, m2, m3 = (n - 1 for n in k.shape)

    def corner(d):
        return k[d[0] : d[0] + m1, d[1] : d[1] + m2, d[2] : d[2] + m3]

    c000, c111 = corner((0, 0, 0)), corner((1, 1, 1))
    total = 0
    for a, ab in (((1, 0, 0), (1, 1, 0)), ((1, 0, 0), (1, 0, 1)), ((0, 1, 0), (1, 1, 0)),
                  ((0, 1, 0), (0, 1, 1)), ((0, 0, 1), (1, 0, 1)), ((0, 0, 1), (0, 1, 1))):
        lo = np.minimum(np.minimum(c000, c111), np.minimum(corner(a), corner(ab)))
        hi = np.maximum(np.maximum(c000, c111), np.maximum(corner(a), corner(ab)))
        total += int(np.sum(hi - lo, dtype=np.int64))
    return total


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=None, help="git revision of the 'before' column")
    parser.add_argument("--n", type=int, default=96, help="lattice grid N (N^3 k-points)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--levels", type=int, nargs="*", default=[801, 3201, 12801, 51201])
    args = parser.parse_args(argv)
    before = load_revision(args.before)
    modules = {"before": before, "after": after}
    print(f"before: NumPy implementation of revision {before.revision}; after: this checkout "
          f"(compiled); medians of {args.repeats} runs, CPU time (wall time)")

    # 1. γ on the lattice model
    bands, values, axes, periods = lattice_case(args.n)
    levels = np.linspace(-4.0, 4.0, 801)
    for module in modules.values():  # warm-up (compilation, caches)
        gamma_sums(module, [b[:4, :4, :4] for b in bands], values[:, :4, :4, :4],
                   [a[:4] for a in axes], (None,) * 3, levels)
    n_k = args.n**3
    print(f"\n1. gamma sums, lattice model, {args.n}^3 = {n_k:,} k-points, 2 bands, "
          f"{len(values)} integrands, {levels.size} levels:")
    results = {}
    for name, module in modules.items():
        results[name], cpu, wall = timed(args.repeats, gamma_sums, module, bands, values, axes,
                                         periods, levels)
        print(f"  {name:6s}: {cpu:7.2f} s ({wall:6.2f} s)  {n_k / cpu:12,.0f} k-points/s per core")
    print(f"  difference {difference(results['after'], results['before']):.1e}")
    del bands, values

    # 2. cylindrical grid
    rho = np.linspace(0.0, 10.0, N_RHO)
    phi = np.arange(N_PHI) * (2 * np.pi / N_PHI)
    kz = np.linspace(-6.0, 6.0, N_KZ)
    axes, periods = (rho, phi, kz), (None, 2 * np.pi, None)
    R, P, Z = np.meshgrid(rho, phi, kz, indexing="ij")
    h = R * np.cos(P) ** 2
    gap = np.sqrt(R**2 + (1.0 + Z**2 / 3.8) ** 2)
    bands = {"lower": V_TILT * Z - gap, "upper": V_TILT * Z + gap}
    del R, P, Z, gap
    n_tet = 6 * (N_RHO - 1) * N_PHI * (N_KZ - 1)
    print(f"\n2. cylindrical grid {N_RHO}x{N_PHI}x{N_KZ}: {n_tet:,} tetrahedra per band, 1 integrand")
    for n_levels in (801, 1601):
        levels = np.linspace(-4.0, 4.0, n_levels)
        n_pairs = sum(count_pairs(e, levels) for e in bands.values())
        line, got = f"  {n_levels} levels, both bands ({n_pairs / n_tet / 2:.2f} pairs per tetrahedron):", {}
        for name, module in modules.items():
            got[name], cpu, wall = timed(args.repeats, lambda m: [
                m.fermi_surface_integral(e, h[None], axes, levels, periods) for e in bands.values()
            ], module)
            line += (f"\n    {name:6s}: {cpu:6.2f} s ({wall:5.2f} s)  {2 * n_tet / cpu / 1e6:6.1f} M "
                     f"tetrahedra/s  {n_pairs / cpu / 1e6:6.1f} M pairs/s")
        print(line + f"\n    difference {difference(got['after'], got['before']):.1e}")
    line = "  node weights at one level (upper band):"
    got = {}
    for name, module in modules.items():
        got[name], cpu, wall = timed(args.repeats, module.fermi_surface_node_weights,
                                     bands["upper"], axes, 1.0, periods)
        line += f"  {name} {cpu:.3f} s ({wall:.3f} s)"
    print(line + f"  difference {difference(got['after'], got['before']):.1e}")

    # 3. cost against N_l
    many = np.stack([h * (1.0 + 0.1 * i) for i in range(18)])
    print(f"\n3. cost against the number of levels N_l (upper band, {len(many)} integrands):")
    print("  N_l      before      after    before/after  difference")
    for n_levels in args.levels:
        levels = np.linspace(-4.0, 4.0, n_levels)
        got, cpu = {}, {}
        for name, module in modules.items():
            got[name], cpu[name], _ = timed(max(1, args.repeats - 1), module.fermi_surface_integral,
                                            bands["upper"], many, axes, levels, periods)
        print(f"  {n_levels:<7d}  {cpu['before']:7.2f} s  {cpu['after']:7.2f} s  "
              f"{cpu['before'] / cpu['after']:12.1f}  {difference(got['after'], got['before']):10.1e}")


if __name__ == "__main__":
    main()
