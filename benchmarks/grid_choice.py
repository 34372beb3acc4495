"""Which k-grid converges fastest for the paper's model? γ_xxz error vs k-points, per grid kind.

Runs the pipeline's own γ_xxz reduction (linear tetrahedra, T = 0) on uniform cylindrical and
Cartesian grids of growing size over the same k-window and prints the largest error against the
semi-analytic route (qmdipole.analytic) relative to max|γ|, for the two-valley model of Fig. 4.

    python benchmarks/grid_choice.py
"""

import time
from pathlib import Path

import numpy as np
import yaml

from qmdipole import analytic
from qmdipole.config import grid_needs_of
from qmdipole.kgrid import build_kgrid
from qmdipole.models import build_model, valley_parameters
from qmdipole.quadrupolar import gamma_from_table
from qmdipole.tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]


def main():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    needs, _ = grid_needs_of(config)
    mu = np.linspace(-4, 4, 161)
    valleys = config["model"]["valleys"]
    models = [build_model(config["model"], v) for v in range(len(valleys))]
    reference = analytic.valley_sum(
        analytic.gamma_xxz, mu, [valley_parameters(config["model"], v) for v in range(len(valleys))]
    )
    print(f"{'grid':<12}{'k-points':>12}{'max error':>12}{'seconds':>10}")
    for kind, shapes in (
        ("cylindrical", [(40, 4, 80), (80, 4, 160), (160, 4, 320)]),
        ("cartesian", [(40, 40, 80), (64, 64, 128), (100, 100, 200)]),
    ):
        for shape in shapes:
            start, total, points = time.perf_counter(), np.zeros_like(mu), 0
            for model in models:
                rho, kz_lo, kz_hi = model.k_window(needs.energy_range, needs.transition_cutoff)
                window = ((0, rho), None, (kz_lo, kz_hi)) if kind == "cylindrical" else (
                    (-rho, rho), (-rho, rho), (kz_lo, kz_hi))
                grid = build_kgrid(model, kind, shape, window)
                total += gamma_from_table(tabulate(model, grid).compute(), mu=mu)["gamma_xxz"].values
                points += grid.size
            error = np.abs(total - reference).max() / np.abs(reference).max()
            print(f"{kind:<12}{points:>12d}{error:>12.2e}{time.perf_counter() - start:>10.1f}")


if __name__ == "__main__":
    main()
