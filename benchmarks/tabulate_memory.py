"""Peak RSS of ``tabulate.write_table`` for a 1e6-point and a 2e7-point cylindrical grid.

Each size runs in a fresh subprocess (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) that builds
the grid of the Fig. 4 valley-1 model, writes its table to a temporary directory with the default
slab size on 2 Dask threads, and deletes it. The 2e7-point table is ~6 GB on disk: it is skipped
with a message when less than 15 GB are free. Prints both peaks and their ratio (targets: ratio
<= 1.5, both < 2 GiB); the interpreter's RSS after imports is printed as a baseline.

Run: ``python benchmarks/tabulate_memory.py [--sizes 1e6 2e7] [--threads 2] [--dir DIR]``
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIB = 2**30
NEED_FREE = 15 * 10**9
BYTES_PER_POINT = 300  # ~ 32 float64 fields + 4 coordinate/weight floats per k-point


def child(n_points: int, directory: str, threads: int, slab_points: int) -> None:
    """Tabulate one grid and print a JSON line with the figures."""
    import numpy as np

    from qmdipole.kgrid import build_kgrid
    from qmdipole.models import ValleyModel
    from qmdipole.tabulate import write_table

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    model = ValleyModel(delta=1.0, vprime=1.0, tau=1, v=1.0, mass=1.9)
    rho_max, kz_min, kz_max = model.k_window((-4.0, 4.0), 16.0)
    n_phi = 4
    n_rho = max(int(round((n_points / n_phi / 2) ** 0.5)), 2)
    n_kz = max(int(round(n_points / (n_phi * n_rho))), 2)
    grid = build_kgrid(model, "cylindrical", (n_rho, n_phi, n_kz),
                       ((0.0, rho_max), None, (kz_min, kz_max)))
    path = Path(directory) / f"table_{n_points}.nc"
    start = time.perf_counter()
    try:
        write_table(model, grid, path, threads=threads, slab_points=slab_points, progress=False)
        elapsed = time.perf_counter() - start
        size = path.stat().st_size
    finally:
        path.unlink(missing_ok=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(json.dumps({"points": grid.size, "shape": grid.shape, "peak_rss": peak,
                      "baseline_rss": baseline, "seconds": elapsed, "bytes": size,
                      "numpy": np.__version__}))


def run(n_points: int, directory: Path, threads: int, slab_points: int) -> dict | None:
    free = shutil.disk_usage(directory).free
    if n_points * BYTES_PER_POINT > free or (n_points >= 10**7 and free < NEED_FREE):
        print(f"  skip {n_points:.0e} points: only {free / 1e9:.1f} GB free in {directory} "
              f"(need >= {NEED_FREE / 1e9:.0f} GB)")
        return None
    cmd = [sys.executable, __file__, "--child", str(n_points), "--dir", str(directory),
           "--threads", str(threads), "--slab-points", str(slab_points)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  {n_points:.0e} points FAILED ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 2e7])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--slab-points", type=int, default=2**18)
    parser.add_argument("--dir", default=None, help="where to write the tables (default: a temp dir)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child is not None:
        child(args.child, args.dir, args.threads, args.slab_points)
        return

    base = Path(args.dir) if args.dir else Path(tempfile.gettempdir())
    directory = Path(tempfile.mkdtemp(prefix="qmd_membench_", dir=base))
    print(f"write_table peak RSS, {args.threads} threads, slab_points {args.slab_points}, "
          f"tables in {directory} (deleted afterwards)")
    results = []
    try:
        for size in args.sizes:
            r = run(int(size), directory, args.threads, args.slab_points)
            if r is None:
                continue
            results.append(r)
            print(f"  {r['points']:>10d} points {tuple(r['shape'])}: peak RSS "
                  f"{r['peak_rss'] / 2**20:8.1f} MiB (after imports {r['baseline_rss'] / 2**20:.0f} "
                  f"MiB), {r['seconds']:.1f} s, {r['points'] / r['seconds'] / 1e6:.2f} M k-points/s, "
                  f"{r['bytes'] / 2**30:.2f} GiB on disk")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if len(results) >= 2:
        small, large = results[0], results[-1]
        ratio = large["peak_rss"] / small["peak_rss"]
        print(f"  ratio {large['points']:.0e} / {small['points']:.0e}: {ratio:.2f} (target <= 1.5)")
        print(f"  both < 2 GiB: {max(r['peak_rss'] for r in results) < 2 * GIB}  "
              f"ratio <= 1.5: {ratio <= 1.5}")


if __name__ == "__main__":
    main()
