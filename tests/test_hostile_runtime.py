"""Failures at run time end within a bounded time, say what happened and leave no result behind.

A Dask cluster that loses its workers or does not answer raises ``SchedulerError`` within
``worker_timeout``; a pipeline script stopped by SIGTERM (how Snakemake stops jobs) removes its
temporary ``.part`` folder, and one left by a SIGKILL is removed by the next write of that file; a
full disk is reported as such, naming the file. In every case nothing is left at the output path.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from checks import serving
from qmdipole import io
from qmdipole.io import DiskFullError
from qmdipole.kgrid import build_kgrid
from qmdipole.models import ValleyModel
from qmdipole.tabulate import SchedulerError, write_table

REPO = Path(__file__).resolve().parents[1]
MODEL = ValleyModel(delta=1.0, vprime=1.0, tau=1, v=1.0, mass=1.9)
GRID = build_kgrid(MODEL, "cylindrical", (21, 4, 33), ((0.0, 3.0), None, (-2.5, 2.5)))


@dataclass
class SlowModel(ValleyModel):
    """:class:`ValleyModel` taking ``pause`` seconds per d-vector call (one per slab)."""

    pause: float = 0.2

    def d_vector(self, kx, ky, kz):
        time.sleep(self.pause)
        return super().d_vector(kx, ky, kz)


@dataclass
class FatalModel(ValleyModel):
    """:class:`ValleyModel` that kills any process but the one that made it (a Dask worker)."""

    home: int = field(default_factory=os.getpid)

    def d_vector(self, kx, ky, kz):
        if os.getpid() != self.home:
            os._exit(1)
        return super().d_vector(kx, ky, kz)


PARAMETERS = {"delta": 1.0, "vprime": 1.0, "tau": 1, "v": 1.0, "mass": 1.9}
SLOW = SlowModel(**PARAMETERS)


def _leftovers(folder: Path) -> list[str]:
    """Everything in ``folder``: a failed write must leave neither its file nor a .part folder."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _small_dataset(n=10) -> xr.Dataset:
    return xr.Dataset(
        {"a": ("x", np.arange(float(n)), {"units": "1", "long_name": "a"})},
        coords={"x": ("x", np.arange(n), {"units": "1", "long_name": "x"})},
    )


# ------------------------------------------------------------------------------------------
# 1. Dask distributed: no hang without workers, no wait on a silent scheduler
# ------------------------------------------------------------------------------------------

def test_healthy_cluster_writes_the_threaded_table_exactly(tmp_path):
    distributed = pytest.importorskip("distributed")
    threaded = write_table(MODEL, GRID, tmp_path / "threads.nc", slab_points=700, threads=2,
                           progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        clustered = write_table(MODEL, GRID, tmp_path / "cluster.nc", slab_points=700,
                                address=cluster.scheduler_address, worker_timeout=5)
    with xr.open_dataset(threaded) as a, xr.open_dataset(clustered) as b:
        xr.testing.assert_equal(a.load(), b.load())  # values, dims and coordinates, bit for bit
        assert a.attrs["n_degenerate"] == b.attrs["n_degenerate"]


def test_cluster_losing_its_last_worker_fails_within_worker_timeout(tmp_path):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "tables"
    timeout = 2.0
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        # 21 slabs of 0.2 s: the only worker is retired about a second into the run
        retire = threading.Timer(1.0, cluster.scale, args=(0,))
        retire.start()
        start = time.monotonic()
        try:
            with pytest.raises(SchedulerError) as failure:
                write_table(SLOW, GRID, out / "valley1.nc", slab_points=132,
                            address=cluster.scheduler_address, worker_timeout=timeout)
        finally:
            retire.cancel()
        elapsed = time.monotonic() - start
    assert 1.0 + timeout <= elapsed < 1.0 + timeout + 15, elapsed
    message = str(failure.value)
    assert cluster.scheduler_address in message
    assert "no workers" in message and "tabulate.worker_timeout" in message
    assert _leftovers(out) == []


CLUSTER_SCRIPT = """
import sys
import dask
from distributed import LocalCluster

if __name__ == "__main__":
    dask.config.set({"distributed.scheduler.allowed-failures": 0})
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                           protocol="tcp", host="127.0.0.1", dashboard_address=None)
    print(cluster.scheduler_address, flush=True)
    sys.stdin.read()  # serve until the test closes our stdin
    cluster.close()
"""


def _cluster_process():
    """Address of a Dask cluster with worker processes, run by a process importing this module."""
    pytest.importorskip("distributed")
    path = [str(REPO / "src"), str(Path(__file__).parent), os.environ.get("PYTHONPATH")]
    return serving(CLUSTER_SCRIPT, {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))})


def test_workers_dying_on_every_task_fail_at_once(tmp_path):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "tables"
    with _cluster_process() as address:
        start = time.monotonic()
        with pytest.raises(SchedulerError) as failure:
            write_table(FatalModel(**PARAMETERS), GRID, out / "valley1.nc", address=address,
                        worker_timeout=60.0)
        elapsed = time.monotonic() - start
    assert elapsed < 30, elapsed  # well within worker_timeout: KilledWorker ends the wait
    message = str(failure.value)
    assert address in message and "kept dying" in message
    assert isinstance(failure.value.__cause__, distributed.KilledWorker)
    assert _leftovers(out) == []


def test_scheduler_that_does_not_answer_fails_within_worker_timeout(tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "tables"
    with socket.socket() as silent:  # accepts TCP connections, never speaks Dask
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = "tcp://127.0.0.1:%d" % silent.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(SchedulerError) as failure:
            write_table(MODEL, GRID, out / "valley1.nc", address=address, worker_timeout=1.0)
        elapsed = time.monotonic() - start
    assert elapsed < 15, elapsed
    message = str(failure.value)
    assert address in message and "did not answer" in message
    assert "tabulate.worker_timeout" in message
    assert _leftovers(out) == []


# ------------------------------------------------------------------------------------------
# 2. Killed writes leave no .part folder behind
# ------------------------------------------------------------------------------------------

SIGTERMED_SCRIPT = """
import faulthandler, signal, sys, time
faulthandler.register(signal.SIGUSR1, file=open({stacks!r}, "w"), all_threads=True)
from types import SimpleNamespace

sys.path[:0] = [{scripts!r}, {tests!r}]
from _pipeline import logged
from qmdipole.kgrid import build_kgrid
from qmdipole.tabulate import write_table
from test_hostile_runtime import SlowModel

model = SlowModel(delta=1.0, vprime=1.0, tau=1, v=1.0, mass=1.9)
grid = build_kgrid(model, "cylindrical", (200, 4, 33), ((0.0, 3.0), None, (-2.5, 2.5)))
job = SimpleNamespace(log=[{log!r}], output=[], rule="tabulate", wildcards={{}}, threads=1)
with logged(job):
    write_table(model, grid, {out!r}, slab_points=132, threads=1, progress=False)
"""


def test_sigterm_during_a_table_write_leaves_no_part_folder(tmp_path):
    out, log = tmp_path / "tables" / "valley1.nc", tmp_path / "tabulate.log"
    stacks, script = tmp_path / "stacks.txt", tmp_path / "job.py"
    script.write_text(SIGTERMED_SCRIPT.format(scripts=str(REPO / "workflow" / "scripts"),
                                              tests=str(Path(__file__).parent), log=str(log),
                                              out=str(out), stacks=str(stacks)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)}
    job = subprocess.Popen([sys.executable, str(script)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not list(out.parent.glob(".valley1.nc.*.part")):  # the write has begun
            assert job.poll() is None and time.monotonic() < deadline, "the write never began"
            time.sleep(0.05)
        time.sleep(0.5)
        job.send_signal(signal.SIGTERM)
        try:
            status = job.wait(timeout=30)
        except subprocess.TimeoutExpired:
            job.send_signal(signal.SIGUSR1)  # where it hangs, for the failure report
            time.sleep(1)
            pytest.fail(f"SIGTERM did not stop the job:\n{stacks.read_text()}\n{log.read_text()}")
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert status == 128 + signal.SIGTERM
    assert _leftovers(out.parent) == []
    assert "rule tabulate stopped (exit status 143)" in log.read_text()


def test_stale_part_folders_of_the_target_are_removed_by_the_next_write(tmp_path):
    # what a SIGKILLed write leaves: its private folder with a partial file in it
    stale = tmp_path / ".data.nc.k1ll3d_x.part"
    stale.mkdir()
    (stale / "data.nc").write_bytes(b"partial")
    # folders of other targets (one whose name extends this one's) are not this write's to remove
    others = [tmp_path / ".data.nc.x.nc.abcd1234.part", tmp_path / ".other.nc.abcd1234.part"]
    for folder in others:
        folder.mkdir()
    io.write_netcdf(_small_dataset(), tmp_path / "data.nc")
    assert _leftovers(tmp_path) == sorted([*(f.name for f in others), "data.nc"])


# ------------------------------------------------------------------------------------------
# 3. A full disk is reported as one
# ------------------------------------------------------------------------------------------

def _hdf_error(*args, **kwargs):
    raise RuntimeError("NetCDF: HDF error")


def test_full_disk_is_named_in_the_error(tmp_path, monkeypatch):
    monkeypatch.setattr(xr.Dataset, "to_netcdf", _hdf_error)
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda path: shutil._ntuple_diskusage(10**9, 10**9, 0))
    path = tmp_path / "out" / "table.nc"
    with pytest.raises(DiskFullError) as failure:
        io.write_netcdf(_small_dataset(), path)
    message = str(failure.value)
    assert str(path) in message and "is full (0 bytes free)" in message
    assert "NetCDF: HDF error" in message
    assert isinstance(failure.value.__cause__, RuntimeError)
    assert _leftovers(path.parent) == []


def test_other_write_errors_pass_unchanged_when_the_disk_has_room(tmp_path, monkeypatch):
    monkeypatch.setattr(xr.Dataset, "to_netcdf", _hdf_error)
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda path: shutil._ntuple_diskusage(10**12, 0, 10**12))
    with pytest.raises(RuntimeError, match="^NetCDF: HDF error$") as failure:
        io.write_netcdf(_small_dataset(), tmp_path / "table.nc")
    assert not isinstance(failure.value, DiskFullError)
    assert _leftovers(tmp_path) == []


def test_enospc_is_a_full_disk_whatever_the_free_space(tmp_path, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", no_space)
    with pytest.raises(DiskFullError, match="is full") as failure:
        io.write_netcdf(_small_dataset(), tmp_path / "table.nc")
    assert failure.value.__cause__.errno == 28
    assert _leftovers(tmp_path) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MiB tmpfs mounted at ``tmp_path / 'disk'`` (root only)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], check=True,
                       capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as err:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {err}")
    try:
        yield disk
    finally:  # lazily: HDF5 keeps the file of a failed write open until the process ends
        subprocess.run(["umount", "--lazy", str(disk)], check=False, capture_output=True,
                       timeout=10)


def test_table_on_a_real_full_disk(tiny_disk):
    # 160 x 4 x 120 points x 35 doubles ~ 20 MB (not compressed by default): more than the 2 MiB disk
    grid = build_kgrid(MODEL, "cylindrical", (160, 4, 120), ((0.0, 3.0), None, (-2.5, 2.5)))
    path = tiny_disk / "tables" / "valley1.nc"
    with pytest.raises(DiskFullError) as failure:
        write_table(MODEL, grid, path, threads=1, progress=False)
    message = str(failure.value)
    assert str(path) in message and "is full" in message
    assert failure.value.__cause__ is not None
    assert _leftovers(path.parent) == []


LOGGED_SCRIPT = """
import logging, sys, warnings
from types import SimpleNamespace
sys.path.insert(0, {scripts!r})
from _pipeline import logged

job = SimpleNamespace(log=[{log!r}], output=[], rule="ndd_valley", wildcards={{}}, threads=1)
with logged(job):
    logging.getLogger("qmdipole.ndd").info("an ordinary step")
    logging.getLogger("fontTools.subset").info("subsetting glyphs")
    warnings.warn("the k-grid resolves transition energies only to 11 eta")
"""


def test_warnings_reach_the_console_and_noise_stays_out(tmp_path):
    log = tmp_path / "job.log"
    script = LOGGED_SCRIPT.format(scripts=str(REPO / "workflow" / "scripts"), log=str(log))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "[ndd_valley] WARNING" in proc.stderr and "11 eta" in proc.stderr
    assert "ordinary step" not in proc.stderr  # INFO stays in the log
    text = log.read_text()
    assert "ordinary step" in text and "11 eta" in text
    assert "subsetting" not in text
