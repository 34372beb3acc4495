"""A material-sized run: γ and one Δn spectrum of a coupled 16-band tight-binding model on 3-D
Brillouin-zone grids, wall time and peak memory against N_k (issue target: 100³ in <= 10 min and
<= 4 GiB on 2 cores).

The model is random and coupled (``measure.random_tight_binding``: H(R) on the 27 R-vectors
|R_i| <= 1 of a cubic cell, every band pair coupled). On each N³ grid, through the Python API
with the grid kept as given (no refinement: tolerances no estimate misses):

* γ_jik(μ) at T = 0 on 801 μ across the middle half of the bands (with its half-density subgrid
  for the error estimate, as every run);
* Δn(ω) and ⟨G⟩(ω) of all 120 band pairs on 201 ω (Eq. 12 per pair, no Kubo cross-check), with
  the grid's two subgrids (Richardson and its estimate).

Each line prints N³, the wall time, CPU time and peak RSS increase of each reduction (tabulation
included), and the k-points per second; then a linear extrapolation to the target size, and the
last grid's total time and the process's peak RSS.

Run: ``python benchmarks/many_bands.py [--n 12 16 24] [--bands 16] [--target 100]``; the
issue's target itself, measured rather than extrapolated (~8 min): ``--n 100``.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import warnings

import numpy as np
from measure import Measure, random_tight_binding

import qmdipole as qd
from qmdipole.settings import GridSettings, Sampling, Settings


def settings_for(n: int) -> tuple[GridSettings, Settings]:
    grid = GridSettings(n=(n, n, n), points_per_eta=0.0, max_points=10**9)
    base = Settings()
    loose = dataclasses.replace(base, ndd=dataclasses.replace(
        base.ndd, rtol_delta_n=1e9, rtol_avg_qmd=1e9, on_miss="warn"))
    return grid, loose


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[12, 16, 24], help="grid sizes N (N³)")
    parser.add_argument("--bands", type=int, default=16)
    parser.add_argument("--target", type=int, default=100, help="N of the extrapolation")
    args = parser.parse_args(argv)

    model = random_tight_binding(args.bands)
    energies = np.linalg.eigvalsh(model.hamiltonian(*np.zeros((3, 1))))[0]
    spread = float(energies[-1] - energies[0])
    centre = float(energies.mean())
    mu = Sampling(centre - spread / 4, centre + spread / 4, 801)
    omega = Sampling(0.05 * spread, 1.5 * spread, 201)
    eta = 0.02 * spread
    print(f"{args.bands}-band random coupled model (bands at Gamma span {spread:.3g}); "
          f"gamma on 801 mu, Delta n + <G> on 201 omega, eta {eta:.3g}")
    print(f"{'N^3':>10} {'reduction':<22} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9} {'k/s':>10}")
    rates = {}
    for n in args.n:
        grid, settings = settings_for(n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for label, run in (
                ("gamma (T = 0)", lambda: qd.quadrupolar_current(
                    model, mu=mu, temperatures=[], rtol=1e9, on_miss="warn", kgrid=grid,
                    settings=settings)),
                ("Delta n + <G>", lambda: qd.ndd_spectrum(
                    model, omega=omega, eta=eta, mu=centre, kubo=False, kgrid=grid,
                    settings=settings)),
            ):
                with Measure() as m:
                    run()
                rate = n**3 / m.wall
                rates.setdefault(label, []).append((n**3, m.wall, m.peak))
                print(f"{n**3:>10,} {label:<22} {m.wall:8.1f} {m.cpu:8.1f} {m.peak:9.0f} "
                      f"{rate:10,.0f}", flush=True)
    size = args.target**3
    for label, found in rates.items():
        points, wall, peak = found[-1]
        print(f"{label}: linear extrapolation to {args.target}^3 = {size:,} k-points: "
              f"~{wall * size / points / 60:.0f} min (peak {peak:.0f} MiB at {points:,})")
    both = sum(found[-1][1] for found in rates.values())
    print(f"both reductions on {args.n[-1]}^3: {both / 60:.1f} min; the process's peak RSS "
          f"(interpreter and libraries included): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
