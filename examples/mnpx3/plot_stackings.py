"""Δα(ω) and γ_xxz(μ) of the monoclinic, opposite and mirror stackings in one figure.

    python examples/mnpx3/plot_stackings.py     # after the three runs of README.md
    python examples/mnpx3/plot_stackings.py --results results --out results/mnpx3/figures/stackings

Reads ``RESULTS/<run>/reductions/{ndd_spectrum,quadrupolar_current}.nc`` of the runs mnpx3,
mnpx3_opposite and mnpx3_mirror and writes ``OUT.pdf`` and ``OUT.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib
import xarray as xr

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnpx3 import draw_stackings  # noqa: E402

from qmdipole.figures import STYLE, save_figure  # noqa: E402

RUNS = {"monoclinic": "mnpx3", "opposite": "mnpx3_opposite", "mirror": "mnpx3_mirror"}


def load_runs(results: Path) -> dict:
    """{stacking: (ndd_spectrum, quadrupolar_current)} of the runs in ``results``."""
    runs = {}
    for stacking, name in RUNS.items():
        paths = [results / name / "reductions" / f"{kind}.nc"
                 for kind in ("ndd_spectrum", "quadrupolar_current")]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise SystemExit(f"{stacking} stacking: missing {', '.join(missing)}; run its config first "
                             "(examples/mnpx3/README.md)")
        runs[stacking] = tuple(xr.load_dataset(p) for p in paths)
    return runs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--out", type=Path, default=Path("results/mnpx3/figures/stackings"))
    parser.add_argument("--dpi", type=int, default=300)
    args = parser.parse_args(argv)
    with plt.style.context(str(STYLE)):
        pdf, png = save_figure(draw_stackings(load_runs(args.results)), args.out, args.dpi)
    print(f"wrote {pdf} and {png}")


if __name__ == "__main__":
    main()
