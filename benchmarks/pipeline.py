"""Wall time and peak memory of the whole pipeline (default config unless --configfile is given).

    python benchmarks/pipeline.py                      # config/config.yaml, 2 cores
    python benchmarks/pipeline.py --configfile config/ci.yaml --cores 2

Runs ``snakemake --cores N`` from scratch in a temporary working directory (the checkout's
Snakefile, its config merged with the given files) and prints the wall time, the duration of
each job (from the first and last line of its log file) and the peak resident memory of the
largest process it started (``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the maximum over every
finished descendant, i.e. the largest job, since Snakemake waits for each job's process).
Target on a 2-core machine: under 60 s and under 2 GiB for the default config.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS, TARGET_BYTES = 60.0, 2 * 1024**3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--configfile", nargs="*", default=[], help="merged over config/config.yaml")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="qmdipole-bench-"))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--cores", str(args.cores)]
    if args.configfile:
        cmd += ["--configfile", *(str(Path(f).resolve()) for f in args.configfile)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n", file=sys.stderr)
        print(f"pipeline failed (exit {proc.returncode}); working directory {workdir}")
        return proc.returncode

    print(f"config: config/config.yaml{''.join(' + ' + f for f in args.configfile)}")
    print(f"cores: {args.cores}; working directory: {workdir}")
    for line in job_times(workdir):
        print(line)
    print(f"wall time: {wall:.1f} s (target < {TARGET_SECONDS:.0f} s)"
          f"{'' if wall < TARGET_SECONDS else '  OVER TARGET'}")
    print(f"peak memory (largest job, max RSS): {peak / 1024**2:.0f} MiB "
          f"(target < {TARGET_BYTES / 1024**3:.0f} GiB){'' if peak < TARGET_BYTES else '  OVER TARGET'}")
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def job_times(workdir: Path) -> list[str]:
    """Per-job start-to-finish times from the log files' modification times (best effort)."""
    logs = sorted((workdir / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
    lines = []
    for log in logs:
        text = log.read_text(errors="replace").splitlines()
        if not text:
            continue
        try:
            started = time.mktime(time.strptime(text[0][:19], "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
        lines.append(f"  {log.relative_to(workdir / 'logs').with_suffix('')}: "
                     f"{log.stat().st_mtime - started:.1f} s")
    return lines


if __name__ == "__main__":
    sys.exit(main())
