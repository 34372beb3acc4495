"""Wall time, CPU time and peak memory of a block: shared by the benchmark scripts."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from qmdipole.wannier90 import Wannier90Model


class Measure:
    """Wall time, CPU time and peak RSS increase (sampled every 10 ms) of a block."""

    def __enter__(self):
        self.process = psutil.Process()
        self.rss0 = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def _sample(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        self._stop.set()
        self._thread.join()
        self.peak = (max(self.peak, self.process.memory_info().rss) - self.rss0) / 2**20
        return False

    def __str__(self):
        return f"wall {self.wall:7.2f} s, CPU {self.cpu:7.2f} s, peak RSS +{self.peak:6.0f} MiB"


def random_tight_binding(n_bands: int, seed: int = 0) -> Wannier90Model:
    """A coupled n-band model: random H(R) on the 27 R-vectors |R_i| <= 1 of a cubic cell."""
    rng = np.random.default_rng(seed)
    r_vectors = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)])
    hoppings = rng.normal(size=(27, n_bands, n_bands)) + 1j * rng.normal(size=(27, n_bands, n_bands))
    partner = [int(np.flatnonzero((r_vectors == -r).all(axis=1))[0]) for r in r_vectors]
    hoppings = 0.5 * (hoppings + np.conj(hoppings[partner].transpose(0, 2, 1)))  # H(−R) = H(R)†
    return Wannier90Model(hoppings, r_vectors, np.eye(3))


def package_at(rev: str, repo: Path = Path(__file__).resolve().parents[1]):
    """The ``qmdipole`` package of git revision ``rev``, imported as ``qmdipole_before`` (for
    before/after comparisons in one process)."""
    target = Path(tempfile.mkdtemp(prefix="qmdipole-before-"))
    archive = subprocess.run(["git", "archive", rev, "src/qmdipole"], cwd=repo, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    (target / "src" / "qmdipole").rename(target / "qmdipole_before")
    sys.path.insert(0, str(target))
    return importlib.import_module("qmdipole_before")
