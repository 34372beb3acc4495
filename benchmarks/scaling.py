"""Run time and peak memory of γ at T = 0 against the number of k-points N_k.

The cubic-lattice valley model (qmdipole.models.LatticeValleyModel, valley 1) on N³ Brillouin-zone
grids, N_k from ~10⁵ up; 801 μ in [−4, 4]. The geometry table is lazy (``tabulate.tabulate``:
Dask, computed slab by slab) and ``quadrupolar.fermi_surface_dipoles`` reads it slab by slab
(``slab_points``), so the whole γ run holds one slab at a time: its peak memory should not grow
with N_k, its time should grow like N_k. Printed per N: CPU and wall time of the whole run
(tabulation + tetrahedron sums; Dask's synchronous scheduler, one core), CPU time of the
tetrahedron sums alone, k-points/s of both, the peak RSS above that before the run (sampled),
and γ_xxz's change against the finest grid (O(h²) = O(N_k^(−2/3)) convergence).

    python benchmarks/scaling.py [--n 46 58 74 93 117 147 186] [--slab-points 262144]
"""

from __future__ import annotations

import argparse
import time

import dask
import numpy as np

from measure import Measure
from qmdipole import quadrupolar, tabulate, tetrahedron
from qmdipole.kgrid import build_kgrid
from qmdipole.models import LatticeValleyModel

MODEL = LatticeValleyModel(delta=1.0, vprime=1.0, tau=1, mass=1.9)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="*", default=[46, 58, 74, 93, 117, 147, 186])
    parser.add_argument("--slab-points", type=int, default=2**18)
    args = parser.parse_args(argv)
    mu = np.linspace(-4.0, 4.0, 801)
    xz = quadrupolar.PAIRS.index((0, 2))
    sums_cpu = [0.0]
    integral = tetrahedron.TetrahedronGrid.integrals

    def timed_integral(*a, **kw):  # CPU time of the tetrahedron sums inside the γ run
        start = time.process_time()
        result = integral(*a, **kw)
        sums_cpu[0] += time.process_time() - start
        return result

    tetrahedron.TetrahedronGrid.integrals = timed_integral
    small = build_kgrid(MODEL, "brillouin_zone", (8, 8, 8), None)
    quadrupolar.fermi_surface_dipoles(tabulate.tabulate(MODEL, small), mu)  # compile
    print(f"gamma at T = 0, {mu.size} mu, lattice model valley 1, slabs of {args.slab_points:,} "
          "k-points, one core")
    print("  N     N_k          total CPU (wall)     k-points/s   sums CPU   sums k-points/s"
          "   peak RSS")
    gammas, sizes, times = [], [], []
    with dask.config.set(scheduler="synchronous"):
        for n in args.n:
            grid = build_kgrid(MODEL, "brillouin_zone", (n, n, n), None)
            sums_cpu[0] = 0.0
            with Measure() as run:
                dipoles = quadrupolar.fermi_surface_dipoles(tabulate.tabulate(MODEL, grid), mu,
                                                            slab_points=args.slab_points)
            cpu, wall, memory = run.cpu, run.wall, run
            gammas.append(-quadrupolar.GAMMA_UNIT * dipoles.sum(axis=0)[0, xz])
            sizes.append(grid.size)
            times.append(cpu)
            print(f"  {n:<4d}  {grid.size:<11,d}  {cpu:7.2f} s ({wall:6.2f} s)  {grid.size / cpu:12,.0f}"
                  f"  {sums_cpu[0]:7.2f} s  {grid.size / sums_cpu[0]:14,.0f}  +{memory.peak:5.0f} MiB")
    slope = np.polyfit(np.log(sizes), np.log(times), 1)[0]
    print(f"  total CPU time ~ N_k^{slope:.2f} (least squares over the grids; 1 = linear)")
    finest = gammas[-1]
    print("  gamma_xxz change against the finest grid (max over mu / max|gamma|): "
          + ", ".join(f"N={n}: {np.abs(g - finest).max() / np.abs(finest).max():.1e}"
                      for n, g in zip(args.n[:-1], gammas[:-1])))


if __name__ == "__main__":
    main()
