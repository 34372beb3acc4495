"""Write the MnPX₃-class model of ``mnpx3.py`` as Wannier90 files, and its fitted Eq. 14 valleys.

    python examples/mnpx3/make_model.py                       # all three stackings
    python examples/mnpx3/make_model.py --stacking monoclinic --dir examples/mnpx3/model

For each stacking S it writes ``DIR/mnpx3_S_hr.dat``, ``DIR/mnpx3_S_centres.xyz`` (qmdipole's
writers; eV, Å) and ``DIR/mnpx3_S_valleys.yaml``: the ``model:`` section of Eq. 14
(``kind: valley``) with Δ, v, v′, m fitted at K and K′ from the bands, and prints the fit beside
the closed forms.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnpx3 import STACKINGS, MnPX3, continuum_section, fit_valleys  # noqa: E402

from qmdipole.wannier90 import write_centres, write_hr  # noqa: E402


def write_model(stacking: str, directory: Path) -> dict[str, Path]:
    """The files of ``stacking`` in ``directory``; returns their paths by kind."""
    params = MnPX3.stacked(stacking)
    directory.mkdir(parents=True, exist_ok=True)
    seed = directory / f"mnpx3_{stacking}"
    paths = {"hr": Path(f"{seed}_hr.dat"), "centres": Path(f"{seed}_centres.xyz"),
             "valleys": Path(f"{seed}_valleys.yaml")}
    hoppings, r_vectors = params.hoppings()
    lattice = " ".join(str(row) for row in params.lattice_vectors.round(12).tolist())
    write_hr(paths["hr"], hoppings, r_vectors,
             comment=f"MnPX3-class Neel antiferromagnet, {stacking} stacking; lattice (A) {lattice}")
    write_centres(paths["centres"], params.centres,
                  comment=f"Wannier centres (Angstrom) of A-up, B-up, A-down, B-down")
    fits = fit_valleys(params)
    paths["valleys"].write_text(
        f"# Eq. 14 fitted at K, K' of the {stacking} stacking (eV, Angstrom; one spin)\n"
        + yaml.safe_dump({"model": continuum_section(fits)}, sort_keys=False))
    print(f"{stacking}: lattice vectors (Å) {params.lattice_vectors.round(6).tolist()}")
    for fit in fits:
        exact = params.closed_form(fit["tau"])
        print("  tau = {:+d}: ".format(fit["tau"]) + ", ".join(
            f"{key} = {fit[key]:.6g} (closed form {exact[key]:.6g})"
            for key in ("delta", "v", "vprime", "mass")))
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacking", choices=sorted(STACKINGS), action="append",
                        help="stacking(s) to write (default: all)")
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent / "model",
                        help="output directory (default: examples/mnpx3/model)")
    args = parser.parse_args(argv)
    np.set_printoptions(precision=6)
    for stacking in args.stacking or list(STACKINGS):
        write_model(stacking, args.dir)


if __name__ == "__main__":
    main()
