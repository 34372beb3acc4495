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
import threading
import time

import dask
import numpy as np
import psutil

from qmdipole import quadrupolar, tabulate
from qmdipole.kgrid import build_kgrid
from qmdipole.models import LatticeValleyModel

MODEL = LatticeValleyModel(delta=1.0, vprime=1.0, tau=1, mass=1.9)


class PeakRss:
    """Peak RSS above that at entry, sampled every 10 ms, in MiB."""

    def __enter__(self):
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.extra = (max(self.peak, self.process.memory_info().rss) - self.start) / 2**20
        return False


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="*", default=[46, 58, 74, 93, 117, 147, 186])
    parser.add_argument("--slab-points", type=int, default=2**18)
    args = parser.parse_args(argv)
    mu = np.linspace(-4.0, 4.0, 801)
    xz = quadrupolar.PAIRS.index((0, 2))
    sums_cpu = [0.0]
    integral = quadrupolar.fermi_surface_integral

    def timed_integral(*a, **kw):  # CPU time of the tetrahedron sums inside the γ run
        start = time.process_time()
        result = integral(*a, **kw)
        sums_cpu[0] += time.process_time() - start
        return result

    quadrupolar.fermi_surface_integral = timed_integral
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
            with PeakRss() as memory:
                cpu, wall = time.process_time(), time.perf_counter()
                dipoles = quadrupolar.fermi_surface_dipoles(tabulate.tabulate(MODEL, grid), mu,
                                                            slab_points=args.slab_points)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            gammas.append(-quadrupolar.GAMMA_UNIT * dipoles.sum(axis=0)[0, xz])
            sizes.append(grid.size)
            times.append(cpu)
            print(f"  {n:<4d}  {grid.size:<11,d}  {cpu:7.2f} s ({wall:6.2f} s)  {grid.size / cpu:12,.0f}"
                  f"  {sums_cpu[0]:7.2f} s  {grid.size / sums_cpu[0]:14,.0f}  +{memory.extra:5.0f} MiB")
    slope = np.polyfit(np.log(sizes), np.log(times), 1)[0]
    print(f"  total CPU time ~ N_k^{slope:.2f} (least squares over the grids; 1 = linear)")
    finest = gammas[-1]
    print("  gamma_xxz change against the finest grid (max over mu / max|gamma|): "
          + ", ".join(f"N={n}: {np.abs(g - finest).max() / np.abs(finest).max():.1e}"
                      for n, g in zip(args.n[:-1], gammas[:-1])))


if __name__ == "__main__":
    main()
