"""Wall time, peak memory and accuracy of the reductions (γ_xxz and the NDD spectrum).

    python benchmarks/reductions.py                       # config/config.yaml, 2 threads
    python benchmarks/reductions.py --configfile config/ci.yaml --mu-points 101 401

Tabulates every valley of the configuration to a temporary NetCDF file (``tabulate.write_table``),
then, reading those files as the pipeline does, times per valley

* ``quadrupolar.gamma_from_table`` (the config's μ grid and temperatures),
* ``ndd.spectrum_from_table`` without and with the Kubo cross-check,

prints the peak resident memory of each call (sampled, above the resident memory before it) and
of the whole run, the accuracy against the independent routes of :mod:`qmdipole.analytic`
(γ_xxz at T = 0 and at the configured temperatures: max error / max|γ|; ⟨G⟩: max error / max⟨G⟩;
Δn: max|error| / max|Δn| with x_max = transition cut-off; Kubo vs Eq. 12), and the run time of
``gamma_from_table`` against the number of chemical potentials N_μ (T = 0), with
the marginal cost per added μ between consecutive N_μ, and the T = 0 γ run time before (the
tetrahedron module of a git revision, ``--before``) and after (this checkout) in k-points/s per
core (CPU time, median of 3) at the config's μ grid.
"""

from __future__ import annotations

import argparse
import copy
import resource
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import psutil
import yaml

from qmdipole import analytic, kgrid, ndd, quadrupolar, tabulate, tetrahedron, valleys
from qmdipole.config import grid_needs_of
from qmdipole.models import build_model, valley_parameters
from qmdipole.settings import Settings

REPO = Path(__file__).resolve().parents[1]


class PeakMemory:
    """Peak RSS of this process while the block runs (sampled every ``interval`` s), in bytes."""

    def __init__(self, interval=0.01):
        self.interval, self.process = interval, psutil.Process()

    def __enter__(self):
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self.t0 = time.perf_counter()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.interval)

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        return False

    @property
    def extra_mib(self):
        return (self.peak - self.start) / 2**20


def load_config(paths):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for path in paths:
        _merge(config, yaml.safe_load(Path(path).read_text()) or {})
    return config


def _merge(base, over):
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(b).max())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", nargs="*", default=[], help="merged over config/config.yaml")
    parser.add_argument("--threads", type=int, default=2, help="Dask threads for the tabulation")
    parser.add_argument("--mu-points", type=int, nargs="*", default=[201, 801, 3201, 12801],
                        help="N_mu of the gamma_from_table scaling runs (T = 0); none to skip")
    parser.add_argument("--keep", action="store_true", help="keep the temporary tables")
    parser.add_argument("--before", default="auto",
                        help="git revision of the 'before' tetrahedron module (auto: the last "
                             "NumPy one; none: skip the comparison)")
    args = parser.parse_args(argv)

    config = load_config(args.configfile)
    kind = config["model"].get("kind", "valley")
    n_valleys = len(config["model"]["valleys"])
    needs = grid_needs_of(config)[0]
    grid_settings = Settings.from_config(config).kgrid
    gamma_cfg, ndd_cfg = config["quadrupolar_current"], config["ndd"]
    mu = np.linspace(**gamma_cfg["mu"])
    temperatures = list(gamma_cfg.get("temperatures", []))
    omega = np.linspace(**ndd_cfg["omega"])
    workdir = Path(tempfile.mkdtemp(prefix="qmdipole-reductions-"))
    print(f"config: config/config.yaml{''.join(' + ' + f for f in args.configfile)}; "
          f"model kind {kind}, {n_valleys} valleys; tables in {workdir}")
    print(f"mu: {len(mu)} points in [{mu[0]:g}, {mu[-1]:g}], temperatures {temperatures}; "
          f"omega: {len(omega)} points in [{omega[0]:g}, {omega[-1]:g}], eta {ndd_cfg['eta']:g}, "
          f"mu {ndd_cfg['mu']:g}, T {ndd_cfg['temperature']:g}, cutoff {ndd_cfg['transition_cutoff']}")

    models, paths, sizes = [], [], []
    for v in range(n_valleys):
        model = build_model(config["model"], v)
        grid = kgrid.grid_for(model, kind, grid_settings, needs)
        path = workdir / f"valley{v + 1}.nc"
        with PeakMemory() as mem:
            tabulate.write_table(model, grid, path, config=config,
                                 slab_points=config["tabulate"].get("slab_points", 2**18),
                                 threads=args.threads, progress=False)
        print(f"valley {v + 1}: grid {grid.shape} = {grid.size:,} k-points; tabulate + write "
              f"{mem.seconds:.1f} s, +{mem.extra_mib:.0f} MiB, {path.stat().st_size / 2**20:.0f} MiB on disk")
        models.append(model)
        paths.append(path)
        sizes.append(grid.size)

    print("\nreductions (reading the NetCDF tables):")
    gammas, plain, with_kubo = [], [], []
    spectrum_options = dict(omega=omega, eta=ndd_cfg["eta"], mu=ndd_cfg.get("mu", 0.0),
                            temperature=ndd_cfg.get("temperature", 0.0), dq=ndd_cfg.get("kubo_dq", 1e-4),
                            transition_cutoff=ndd_cfg["transition_cutoff"])
    for v, (model, path) in enumerate(zip(models, paths)):
        with PeakMemory() as mem:
            gammas.append(quadrupolar.gamma_from_table(path, mu=mu, temperatures=temperatures))
        print(f"  valley {v + 1}: gamma_from_table ({len(mu)} mu, T = 0 + {len(temperatures)} T): "
              f"{mem.seconds:6.1f} s, peak +{mem.extra_mib:5.0f} MiB")
        for kubo, store in ((False, plain), (True, with_kubo)):
            with PeakMemory() as mem, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                store.append(ndd.spectrum_from_table(path, model, kubo=kubo, **spectrum_options))
            print(f"  valley {v + 1}: spectrum_from_table (kubo={kubo!s:5}, {len(omega)} omega): "
                  f"{mem.seconds:6.1f} s, peak +{mem.extra_mib:5.0f} MiB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"peak resident memory of the whole run (ru_maxrss): {peak / 2**20:.0f} MiB")

    report_accuracy(config, kind, gammas, with_kubo, mu, temperatures, omega, ndd_cfg)

    if args.mu_points:
        print("\ngamma_from_table run time vs N_mu (T = 0, mu range of the config):")
        print("  valley  N_k          " + "  ".join(f"N_mu={n:<6d}" for n in args.mu_points)
              + "  marginal cost per mu (between consecutive N_mu)")
        for v, path in enumerate(paths):
            times = []
            for n in args.mu_points:
                start = time.perf_counter()
                quadrupolar.gamma_from_table(path, mu=np.linspace(mu[0], mu[-1], n))
                times.append(time.perf_counter() - start)
            line = f"  {v + 1:<6d}  {sizes[v]:<11,d}  " + "  ".join(f"{t:9.2f} s" for t in times)
            marginal = np.diff(times) / np.diff(args.mu_points)
            line += "  " + ", ".join(f"{1e3 * m:.2f}" for m in marginal) + " ms"
            print(line)
    if args.before != "none":
        before_after(paths, sizes, mu, None if args.before == "auto" else args.before)
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def before_after(paths, sizes, mu, rev):
    """γ at T = 0 per valley with the tetrahedron module of ``rev`` and with this checkout's."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tetrahedron import load_revision  # benchmarks/tetrahedron.py

    before = load_revision(rev)

    def old_integral(cells, energy, values, levels):  # the same mirrors, as the old module's type
        mirror = tuple(before.AxisMirror(m.point, m.nodes, m.period)
                       if isinstance(m, tetrahedron.AxisMirror) else m for m in cells.mirror)
        return before.fermi_surface_integral(energy, values, cells.axes, levels, cells.periods,
                                             mirror=mirror)

    print(f"\ngamma_from_table at T = 0, {len(mu)} mu: before (revision {before.revision}) vs "
          "after, CPU time, median of 3")
    current = tetrahedron.TetrahedronGrid.integrals
    for v, path in enumerate(paths):
        row, results = f"  valley {v + 1} ({sizes[v]:,} k-points):", {}
        for name, integral in (("before", old_integral), ("after", current)):
            tetrahedron.TetrahedronGrid.integrals = integral
            try:
                times = []
                for _ in range(3):
                    start = time.process_time()
                    results[name] = quadrupolar.gamma_from_table(path, mu=mu)["gamma_xxz"].values
                    times.append(time.process_time() - start)
            finally:
                tetrahedron.TetrahedronGrid.integrals = current
            cpu = float(np.median(times))
            row += f"  {name} {cpu:7.2f} s = {sizes[v] / cpu:10,.0f} k-points/s per core;"
        print(row + f"  difference {rel(results['after'], results['before']):.1e}")


def report_accuracy(config, kind, gammas, spectra, mu, temperatures, omega, ndd_cfg):
    print("\naccuracy:")
    total_gamma = valleys.combine_valleys(gammas, dim="mu")
    total_spectrum = valleys.combine_valleys(spectra, dim="omega")
    kubo = max(ds.attrs.get("kubo_max_relative_difference", np.nan) for ds in spectra)
    print(f"  Kubo (Eq. 11) vs Eq. 12, max over valleys: {kubo:.2e} relative (target <= 1e-6)")
    if kind != "valley":
        print(f"  (no analytic route for model kind {kind!r}: only the Kubo cross-check)")
        return
    params = [valley_parameters(config["model"], v) for v in range(len(gammas))]
    reference = analytic.valley_sum(analytic.gamma_xxz, mu, params)
    per_valley = [rel(ds["gamma_xxz"].values, analytic.gamma_xxz(mu, **p)) for ds, p in zip(gammas, params)]
    print(f"  gamma_xxz(T = 0): max error / max|gamma| = {rel(total_gamma['gamma_xxz'].values, reference):.2e}"
          f" (target <= 2e-3; per valley {', '.join(f'{e:.2e}' for e in per_valley)})")
    pick = slice(None, None, max(len(mu) // 20, 1))
    for t in temperatures:
        ref_t = analytic.valley_sum(analytic.gamma_xxz, mu[pick], params, temperature=t)
        got = total_gamma["gamma_xxz_temperature"].sel(temperature=t).values[pick]
        print(f"  gamma_xxz(T = {t:g}): max error / max|gamma_T| = {rel(got, ref_t):.2e} "
              f"({len(ref_t)} mu points, analytic thermal convolution)")
    if ndd_cfg.get("mu", 0.0) != 0.0 or ndd_cfg.get("temperature", 0.0) != 0.0:
        window_note = " (metal: analytic <G> with Pauli blocking, no analytic Delta n)"
        ref_g = sum(analytic.avg_qmd(omega, mu=ndd_cfg.get("mu", 0.0),
                                     temperature=ndd_cfg.get("temperature", 0.0), **p) for p in params)
        print(f"  <G>: max error / max|<G>| = {rel(total_spectrum['avg_qmd'].values, ref_g):.2e}{window_note}")
        return
    ref_g = analytic.valley_sum(analytic.avg_qmd_insulator, omega, params)
    per_valley = [rel(ds["avg_qmd"].values, analytic.avg_qmd_insulator(omega, **p)) for ds, p in zip(spectra, params)]
    print(f"  <G>: max error / max|<G>| = {rel(total_spectrum['avg_qmd'].values, ref_g):.2e} "
          f"(target <= 5e-3; per valley {', '.join(f'{e:.2e}' for e in per_valley)})")
    x_max = None if ndd_cfg["transition_cutoff"] == "auto" else ndd_cfg["transition_cutoff"]
    ref_n = analytic.valley_sum(analytic.delta_n_insulator, omega, params, eta=ndd_cfg["eta"],
                                x_max=x_max)
    got_n = total_spectrum["re_delta_n"].values + 1j * total_spectrum["im_delta_n"].values
    per_valley = [rel(ds["re_delta_n"].values + 1j * ds["im_delta_n"].values,
                      analytic.delta_n_insulator(omega, eta=ndd_cfg["eta"], x_max=x_max, **p))
                  for ds, p in zip(spectra, params)]
    print(f"  Delta n: max |error| / max|Delta n| = {rel(got_n, ref_n):.2e} (target <= 1e-2; "
          f"per valley {', '.join(f'{e:.2e}' for e in per_valley)})")


if __name__ == "__main__":
    sys.exit(main())
