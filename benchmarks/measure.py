"""Wall time, CPU time and peak memory of a block: shared by the benchmark scripts."""

from __future__ import annotations

import threading
import time

import psutil


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
