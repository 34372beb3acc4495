"""Wall time and peak memory of the whole pipeline (default config unless --configfile is given).

    python benchmarks/pipeline.py                      # config/config.yaml, 2 cores
    python benchmarks/pipeline.py --configfile config/ci.yaml --cores 2
    python benchmarks/pipeline.py --before main        # a git revision first, then this checkout

Runs ``snakemake --cores N`` from scratch in a temporary working directory (the checkout's
Snakefile, its config merged with the given files) and prints the wall time, the duration of
each job (from the first and last line of its log file) and the peak resident memory of the
largest process it started (``ru_maxrss`` of Snakemake's rusage from ``os.wait4``: the maximum
over every descendant it waited for, i.e. the largest job). Each run compiles the numba kernels
afresh (its own empty NUMBA_CACHE_DIR), as a first run does. With ``--before REV`` the same runs
first with the Snakefile, workflow and package of git revision REV (``git archive``), then with
this checkout's, each with its own ``src`` first on PYTHONPATH, and prints both side by side (the
machine may be shared: compare the ratio).
Target on a 2-core machine: under 60 s and under 2 GiB for the default config.
"""

from __future__ import annotations

import argparse
import os
import shutil
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
    parser.add_argument("--before", help="git revision to run first, for a before/after table")
    args = parser.parse_args(argv)

    print(f"config: config/config.yaml{''.join(' + ' + f for f in args.configfile)}; "
          f"cores: {args.cores}")
    runs = {}
    if args.before:
        source = Path(tempfile.mkdtemp(prefix="qmdipole-before-"))
        archive = subprocess.run(["git", "archive", args.before], cwd=REPO, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
        runs[f"before ({args.before})"] = source
    runs["after (this checkout)"] = REPO
    results = {}
    for name, repo in runs.items():
        result = run(repo, args)
        if result is None:
            return 1
        results[name] = result
        wall, peak, workdir = result
        print(f"\n{name}: working directory {workdir}")
        for line in job_times(workdir):
            print(line)
        print(f"wall time: {wall:.1f} s (target < {TARGET_SECONDS:.0f} s)"
              f"{'' if wall < TARGET_SECONDS else '  OVER TARGET'}")
        print(f"peak memory (largest job, max RSS): {peak / 1024**2:.0f} MiB "
              f"(target < {TARGET_BYTES / 1024**3:.0f} GiB)"
              f"{'' if peak < TARGET_BYTES else '  OVER TARGET'}")
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if len(results) == 2:
        (wall0, peak0, _), (wall1, peak1, _) = results.values()
        print(f"\nbefore -> after: wall {wall0:.1f} s -> {wall1:.1f} s ({wall0 / wall1:.2f}x), "
              f"peak {peak0 / 1024**2:.0f} MiB -> {peak1 / 1024**2:.0f} MiB")
    return 0


def run(repo: Path, args):
    """``(wall seconds, peak RSS bytes of the largest job, working directory)`` of the pipeline
    of ``repo`` (its ``src`` first on PYTHONPATH) from scratch, or None if it failed."""
    workdir = Path(tempfile.mkdtemp(prefix="qmdipole-bench-"))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"),
           "--directory", str(workdir), "--cores", str(args.cores)]
    if args.configfile:
        cmd += ["--configfile", *(str(Path(f).resolve()) for f in args.configfile)]
    numba_cache = tempfile.mkdtemp(prefix="qmdipole-numba-")
    env = {**os.environ, "NUMBA_CACHE_DIR": numba_cache,
           "PYTHONPATH": os.pathsep.join(
               [str(repo / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    output = proc.stdout.read()
    # the rusage of this child covers every descendant it waited for: its largest job
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    shutil.rmtree(numba_cache, ignore_errors=True)
    if os.waitstatus_to_exitcode(status) != 0:
        print(output[-8000:], file=sys.stderr)
        print(f"pipeline of {repo} failed; working directory {workdir}")
        return None
    return wall, usage.ru_maxrss * 1024, workdir  # ru_maxrss: KiB on Linux


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
