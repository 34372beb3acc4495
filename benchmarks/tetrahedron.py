"""Throughput of the linear-tetrahedron Fermi-surface integrator on a realistic grid.

Cylindrical grid ρ ∈ [0, 10] (300 nodes), φ periodic (4 nodes, period 2π), k_z ∈ [−6, 6]
(1200 nodes); both bands ε± = v' k_z ± sqrt(ρ² + (1 + k_z²/3.8)²); h = ρ cos²φ; 801 levels in
[−4, 4] (and 1601 levels, ~1 per tetrahedron). Prints tetrahedra/s, (tetrahedron, level)
pairs/s and the peak RSS.

Then the cost against the number of levels N_l (upper band, 18 integrands as for γ): the default
(tetrahedron pieces that hold more than ``_PAIR_LEVELS`` levels added whole, as cubics in the
level) against level-by-level pair sums, whose cost grows like N_l · N_tet^{2/3}; and their
difference (max over levels and integrands, relative to the largest value).

Run: ``python benchmarks/tetrahedron.py`` (add ``--levels 801 3201 12801 51201`` to choose N_l,
``--pairs-up-to N`` to time pair sums only up to N levels: they get slow)
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from qmdipole import tetrahedron
from qmdipole.tetrahedron import fermi_surface_integral, fermi_surface_node_weights

N_RHO, N_PHI, N_KZ = 300, 4, 1200
V_TILT = 0.5
LEVELS = np.linspace(-4.0, 4.0, 801)
DENSE_LEVELS = np.linspace(-4.0, 4.0, 1601)  # ~1 level per tetrahedron


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def count_pairs(energy: np.ndarray, levels: np.ndarray) -> int:
    """(tetrahedron, level) pairs with e_min <= λ < e_max, counted independently of the module
    (open ρ and k_z axes, periodic φ axis)."""
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
    parser.add_argument("--levels", type=int, nargs="*", default=[801, 3201, 12801, 51201])
    parser.add_argument("--pairs-up-to", type=int, default=12801)
    args = parser.parse_args(argv)
    rho = np.linspace(0.0, 10.0, N_RHO)
    phi = np.arange(N_PHI) * (2 * np.pi / N_PHI)
    kz = np.linspace(-6.0, 6.0, N_KZ)
    axes, periods = (rho, phi, kz), (None, 2 * np.pi, None)
    R, P, Z = np.meshgrid(rho, phi, kz, indexing="ij")
    values = (R * np.cos(P) ** 2)[None]
    gap = np.sqrt(R**2 + (1.0 + Z**2 / 3.8) ** 2)
    bands = {"lower": V_TILT * Z - gap, "upper": V_TILT * Z + gap}
    del R, P, Z, gap
    n_tet = 6 * (N_RHO - 1) * N_PHI * (N_KZ - 1)
    rss_inputs = peak_rss_mb()
    print(f"grid {N_RHO}x{N_PHI}x{N_KZ}: {n_tet:,} tetrahedra per band")

    times = {}
    for name, energy in bands.items():
        fermi_surface_integral(energy, values, axes, LEVELS[:5], periods)  # warm-up
        for levels in (LEVELS, DENSE_LEVELS):
            times[name, levels.size] = min(
                _timed(fermi_surface_integral, energy, values, axes, levels, periods)
                for _ in range(3)
            )
    t_weights = min(_timed(fermi_surface_node_weights, bands["upper"], axes, 1.0, periods)
                    for _ in range(3))
    rss_peak = peak_rss_mb()  # before count_pairs, which is not part of the module

    for levels in (LEVELS, DENSE_LEVELS):
        total_pairs = total_time = 0
        for name, energy in bands.items():
            n_pairs = count_pairs(energy, levels)
            dt = times[name, levels.size]
            total_pairs += n_pairs
            total_time += dt
            print(
                f"{levels.size} levels, {name} band: {dt:.3f} s"
                f"  {n_tet / dt / 1e6:5.1f} M tetrahedra/s"
                f"  {n_pairs:,} pairs ({n_pairs / n_tet:.2f} per tetrahedron)"
                f"  {n_pairs / dt / 1e6:5.1f} M pairs/s"
            )
        print(
            f"{levels.size} levels, both bands: {2 * n_tet / total_time / 1e6:.1f} M tetrahedra/s,"
            f" {total_pairs / total_time / 1e6:.1f} M pairs/s"
        )
    print(f"node weights at one level (upper band): {t_weights:.3f} s, "
          f"{n_tet / t_weights / 1e6:.0f} M tetrahedra/s")
    print(f"peak RSS: {rss_peak:.0f} MB (of which inputs and interpreter: {rss_inputs:.0f} MB)")
    level_scaling(bands["upper"], axes, periods, values[0], n_tet, args.levels, args.pairs_up_to)


def level_scaling(energy, axes, periods, h, n_tet, counts, pairs_up_to) -> None:
    """Run time (best of 2) against the number of levels: default against pair-by-pair sums."""
    values = np.stack([h * (1.0 + 0.1 * i) for i in range(18)])
    print(f"\ncost against the number of levels N_l (upper band, {len(values)} integrands):")
    print("  N_l      default   pairs only  pairs/tetrahedron  pairs-only / default  difference")
    default_pair_levels = tetrahedron._PAIR_LEVELS
    rows = []
    for n in counts:
        levels = np.linspace(-4.0, 4.0, n)
        t_default = min(_timed(fermi_surface_integral, energy, values, axes, levels, periods)
                        for _ in range(2))
        result = fermi_surface_integral(energy, values, axes, levels, periods)
        line = f"  {n:<7d}  {t_default:7.2f} s"
        if n <= pairs_up_to:
            tetrahedron._PAIR_LEVELS = np.iinfo(np.int64).max
            try:
                t_pairs = min(_timed(fermi_surface_integral, energy, values, axes, levels,
                                     periods) for _ in range(2))
                pairs = fermi_surface_integral(energy, values, axes, levels, periods)
            finally:
                tetrahedron._PAIR_LEVELS = default_pair_levels
            difference = np.abs(result - pairs).max() / np.abs(pairs).max()
            line += (f"  {t_pairs:9.2f} s  {count_pairs(energy, levels) / n_tet:17.2f}"
                     f"  {t_pairs / t_default:20.2f}  {difference:10.1e}")
        print(line)
        rows.append((n, t_default))
    if len(rows) >= 2:
        (n0, t0), (n1, t1) = rows[-2], rows[-1]
        print(f"  default, last two N_l: time x{t1 / t0:.2f} for N_l x{n1 / n0:.1f}")
    print(f"  peak RSS after the scaling runs: {peak_rss_mb():.0f} MB")


def _timed(func, *args) -> float:
    t0 = time.perf_counter()
    func(*args)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
