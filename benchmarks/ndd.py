"""Throughput of the NDD reduction (Δn by Eq. 12 and Eq. 11, ⟨G⟩ by Eq. 13, with the Richardson
subgrids), before (the package of a git revision) and after (this checkout), side by side in one run.

    python benchmarks/ndd.py                    # default config, both valleys, before = main
    python benchmarks/ndd.py --scale 0.5 --before HEAD~3 --repeats 3
    python benchmarks/ndd.py --no-kubo           # Δn and ⟨G⟩ without the Kubo cross-check

Tabulates each valley of config/config.yaml (kgrid.n times ``--scale`` on the non-azimuthal axes)
in memory, then times ``ndd.spectrum_from_table`` on it with the config's ω grid (781 ω), η, μ
and ``kubo_check`` (or ``--kubo``/``--no-kubo``), alternating before and after ``--repeats``
times. Prints, per valley, the median CPU time of this process (i.e. per core; the machine may be
shared: compare the ratio) and wall time, the k-points per second per core (N_k of the valley's table / CPU time; the subgrids add
~31 % of the points), the time of the compiled tetrahedron sums alone (one call on the whole grid
with the pipeline's spectral nodes) and the largest difference of every curve, relative to its
peak (target ≤ 1e-12; the ``*_error`` estimates are differences of curves and amplify round-off).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from measure import package_at

from qmdipole import kgrid, ndd, tabulate
from qmdipole.config import grid_needs_of
from qmdipole.fermi import grid_mirror
from qmdipole.kgrid import KGrid
from qmdipole.models import build_model
from qmdipole.settings import GridSettings, section_settings
from qmdipole.tetrahedron import TetrahedronGrid

REPO = Path(__file__).resolve().parents[1]


def spectrum(package, table, model, options):
    return importlib.import_module(f"{package.__name__}.ndd").spectrum_from_table(
        table, model, **options)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="git revision of the 'before' column")
    parser.add_argument("--scale", type=float, default=1.0, help="factor on kgrid.n (not phi)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kubo", action=argparse.BooleanOptionalAction, default=None,
                        help="the Kubo cross-check on or off (default: the config's kubo_check)")
    args = parser.parse_args(argv)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    n = config["kgrid"]["n"]
    config["kgrid"]["n"] = [max(round(n[0] * args.scale), 2), n[1],
                            max(round(n[2] * args.scale), 2)]
    section = config["ndd"]
    options = {"omega": np.linspace(**section["omega"]), "eta": section["eta"],
               "mu": section["mu"], "temperature": section["temperature"],
               "kubo": section["kubo_check"] if args.kubo is None else args.kubo,
               "dq": section["kubo_dq"],
               "transition_cutoff": section["transition_cutoff"]}
    before = package_at(args.before)
    packages = {"before": before, "after": sys.modules["qmdipole"]}
    revision = subprocess.run(["git", "rev-parse", "--short", args.before], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout.strip()
    print(f"before: package of {args.before} ({revision}); after: this checkout. kgrid.n "
          f"{config['kgrid']['n']}, {len(options['omega'])} omega, kubo_check "
          f"{options['kubo']}; medians of {args.repeats} runs, CPU time (wall time)")
    needs, _ = grid_needs_of(config)  # the NDD grid's needs (and gamma's)
    settings = section_settings(GridSettings, config["kgrid"], "kgrid")
    kind = config["model"].get("kind", "valley")
    for valley in range(len(config["model"]["valleys"])):
        model = build_model(config["model"], valley)
        grid = kgrid.grid_for(model, kind, settings, needs)
        table = tabulate.tabulate(model, grid).compute()
        tiny = kgrid.grid_for(model, kind, dataclasses.replace(
            settings, n=(8, 4, 16), points_per_eta=0.0), needs)
        for package in packages.values():  # warm-up: compilation, caches
            spectrum(package, tabulate.tabulate(model, tiny).compute(), model, options)
        cpu = {name: [] for name in packages}
        wall = {name: [] for name in packages}
        results = {}
        for _ in range(args.repeats):
            for name, package in packages.items():
                c, w = time.process_time(), time.perf_counter()
                results[name] = spectrum(package, table, model, options)
                cpu[name].append(time.process_time() - c)
                wall[name].append(time.perf_counter() - w)
        print(f"\nvalley {valley + 1}: {grid.shape} = {grid.size:,} k-points")
        for name in packages:
            c, w = np.median(cpu[name]), np.median(wall[name])
            print(f"  {name:6s}: {c:6.2f} s ({w:6.2f} s)  {grid.size / c:10,.0f} k-points/s per core")
        print(f"  before/after: {np.median(cpu['before']) / np.median(cpu['after']):.2f}")
        print(f"  tetrahedron sums alone (whole grid, 4 integrands, spectral nodes): "
              f"{tetrahedron_seconds(table, results['after']):.2f} s CPU")
        worst = {name: float(np.abs(results["after"][name] - var).max()
                             / max(float(np.abs(var).max()), 1e-300))
                 for name, var in results["before"].data_vars.items()
                 if name in results["after"] and var.dtype.kind == "f"}
        curves = {k: v for k, v in worst.items() if not k.endswith("_error")}
        estimates = {k: v for k, v in worst.items() if k.endswith("_error")}
        print(f"  largest difference / peak: curves {max(curves.values()):.1e} "
              f"({max(curves, key=curves.get)}), error estimates "
              f"{max(estimates.values(), default=0.0):.1e}")


def tetrahedron_seconds(table, result) -> float:
    """CPU time of the hat integrals of the spectral densities (4 integrands) over the whole
    table's transition energies on the spectral levels of ``result`` (its spacing, up to the
    tail's end or the highest transition)."""
    grid = KGrid.from_dataset(table)
    energy = table["energy"].values
    x = energy[-1] - energy[0]
    spacing = result.attrs["spectral_bin_width"]
    top = result.attrs.get("high_energy_tail_end", spacing * np.ceil(x.max() / spacing))
    levels = ndd.SpectralAccumulator(top, spacing).levels
    values = np.stack([np.cos(x + i) for i in range(4)])
    cells = TetrahedronGrid(grid.axes, grid.periods, mirror=grid_mirror(grid))
    start = time.process_time()
    cells.integrals(x, values, levels, hat=True)
    return time.process_time() - start


if __name__ == "__main__":
    main()
