"""γ_xxz at T = 0 of the cubic-lattice valley model: qmdipole against WannierBerri, side by side.

Same model (qmdipole.models.LatticeValleyModel, valley 1 of config/config.yaml, a = 1), same
N×N×N Brillouin-zone grid, same μ grid, both by linear tetrahedra:

* qmdipole: tabulate the geometry (``tabulate.tabulate``), then
  ``quadrupolar.fermi_surface_dipoles`` (the compiled tetrahedron loop) — timed separately, since
  the tetrahedron sums are what this compares;
* WannierBerri: the model's H(R) written as ``seed_hr.dat`` (``wannier90.hoppings_from_hamiltonian``,
  ``write_hr``; centres at the origin, lattice in Å, energies in eV), a ``StaticCalculator`` with
  Formula = velocity × ``QuantumMetric_ab`` (internal terms only: tight-binding metric), f′
  (``fder=1``) by its tetrahedron weights (``tetra=True``), serial, no symmetry.

Both give I(μ) = ∫ d³k Σ_n v_x g_xz δ(ε_n − μ) (WannierBerri's [dk] = d³k/(2π)³ per cell volume
is converted). The two tetrahedron schemes differ (WannierBerri: tetrahedra around each k-point of
its FFT grid), so they agree to the discretisation error, O(h²), not to round-off: printed as the
max difference relative to max |I|, and that of qmdipole at N against 2N for scale.
Prints wall and CPU times, the peak resident memory above that before each run (sampled) and
the ratio; WannierBerri's one-time costs are excluded by a run on a 4^3 grid first.

Needs ``pip install wannierberri`` (the ``bench`` extra); without it, prints a skip message.

    python benchmarks/wannierberri_gamma.py [--n 48] [--mu-points 801]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from measure import Measure
from qmdipole import quadrupolar, tabulate
from qmdipole.kgrid import build_kgrid
from qmdipole.models import LatticeValleyModel
from qmdipole.wannier90 import hoppings_from_hamiltonian, write_hr

MODEL = LatticeValleyModel(delta=1.0, vprime=1.0, tau=1, mass=1.9)
XZ = quadrupolar.PAIRS.index((0, 2))


def qmdipole_table(n: int):
    grid = build_kgrid(MODEL, "brillouin_zone", (n, n, n), None)
    return tabulate.tabulate(MODEL, grid).compute()


def qmdipole_integral(ds, mu) -> np.ndarray:
    """∫ d³k Σ_n v_x g_xz δ(ε_n − μ)."""
    return quadrupolar.fermi_surface_dipoles(ds, mu).sum(axis=0)[0, XZ]


def wannierberri_integral(n: int, mu, workdir: Path):
    import wannierberri as wberri
    from wannierberri.calculators.static import StaticCalculator
    from wannierberri.formula import covariant
    from wannierberri.formula.formula import FormulaProduct
    from wannierberri.system.system_hr import get_system_hr

    class VelocityMetric(FormulaProduct):
        """v_a g_bc of each band (tensor a, b, c)."""

        def __init__(self, data_K, **kwargs):
            super().__init__([data_K.covariant("Ham", commader=1),
                              covariant.QuantumMetric_ab(data_K, **kwargs)], name="VelocityMetric")

    lattice = np.eye(3)
    hoppings, r_vectors = hoppings_from_hamiltonian(MODEL, lattice, n=8)
    write_hr(workdir / "lattice_hr.dat", hoppings, r_vectors)
    with contextlib.redirect_stdout(io.StringIO()):
        system = get_system_hr(str(workdir / "lattice"), wannier_centers_cart=np.zeros((2, 3)),
                               real_lattice=lattice)
        grid = wberri.Grid(system, NKdiv=1, NKFFT=n)
        calculator = StaticCalculator(Efermi=mu, tetra=True, Formula=VelocityMetric, fder=1,
                                      kwargs_formula={"external_terms": False})
        result = wberri.run(system, grid=grid, calculators={"vg": calculator}, parallel=False,
                            use_irred_kpt=False, symmetrize=False,
                            fout_name=str(workdir / "result"))
    data = result.results["vg"].data  # (μ, a, b, c), per unit cell volume, d³k/(2π)³
    return data[:, 0, 0, 2] * (2 * np.pi) ** 3 * abs(np.linalg.det(lattice))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48, help="k-points per axis")
    parser.add_argument("--mu-points", type=int, default=801)
    args = parser.parse_args(argv)
    try:
        import wannierberri  # noqa: F401
    except ImportError:
        print("SKIP: wannierberri is not installed (pip install 'qmdipole[bench]' or "
              "pip install wannierberri)")
        return 0
    n, mu = args.n, np.linspace(-4.0, 4.0, args.mu_points)
    print(f"LatticeValleyModel (valley 1), {n}^3 = {n**3:,} k-points, {mu.size} mu in "
          f"[{mu[0]:g}, {mu[-1]:g}], T = 0, gamma_xxz integrand v_x g_xz")

    ds = qmdipole_table(n)
    qmdipole_integral(ds, mu[:3])  # compile the kernel (cached on disk after the first run)
    with Measure() as q_sums:
        ours = qmdipole_integral(ds, mu)
    with Measure() as q_all:
        ours_again = qmdipole_integral(qmdipole_table(n), mu)
    assert np.array_equal(ours, ours_again)
    with tempfile.TemporaryDirectory(prefix="qmdipole-wberri-") as tmp:
        wannierberri_integral(4, mu[:3], Path(tmp))  # imports, compilation
        with Measure() as wb:
            theirs = wannierberri_integral(n, mu, Path(tmp))
    scale = np.abs(ours).max()
    finer = qmdipole_integral(qmdipole_table(2 * n), mu)

    print(f"qmdipole, tetrahedron sums only:    {q_sums}")
    print(f"qmdipole, tabulate + sums:          {q_all}")
    print(f"WannierBerri (serial, no symmetry): {wb}")
    print(f"ratio WannierBerri / qmdipole: {wb.wall / q_sums.wall:.1f}x (sums), "
          f"{wb.wall / q_all.wall:.1f}x (tabulate + sums), wall time")
    print(f"agreement: max |I_qmdipole - I_WannierBerri| / max|I| = "
          f"{np.abs(ours - theirs).max() / scale:.2e}; discretisation scale: qmdipole at {n}^3 "
          f"vs {2 * n}^3: {np.abs(ours - finer).max() / scale:.2e}, WannierBerri at {n}^3 vs "
          f"qmdipole at {2 * n}^3: {np.abs(theirs - finer).max() / scale:.2e}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
