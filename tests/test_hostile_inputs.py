"""Hostile but realistic inputs: each ends with an error that names what is wrong, never with a
wrong number and exit code 0, and leaves no result file that looks final.

Config problems are refused at ``snakemake -n``; model and file problems at the first stage that
meets them, naming the model or file, the quantity and a k-point.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from checks import assert_refused_at_dry_run
from qmdipole import io, ndd, provenance
from qmdipole.band_structure import band_structure
from qmdipole.geometry import band_geometry
from qmdipole.kgrid import build_kgrid, half_density_table, read_kgrid
from qmdipole.models import PAULI, Model, ModelError, ValleyModel, valley_section
from qmdipole.tabulate import read_table, write_table
from qmdipole.valleys import combine_valleys

MODEL = {"kind": "valley", "v": 1.0, "mass": 1.9,
         "valleys": [{"delta": 1.0, "vprime": 1.0, "tau": 1},
                     {"delta": 2.0, "vprime": -1.0, "tau": -1}]}

SINGULAR_MODEL = '''
import numpy as np
from qmdipole.models import PAULI, Model


class Singular(Model):
    """H = v (k_x σ_x + k_y σ_y) + (Δ + |k|) σ_z: the gradient k/|k| is 0/0 at k = 0."""

    n_bands = 2
    name = "singular_cone"

    def __init__(self, delta, v=1.0, mass=1.0):
        self.delta, self.v = delta, v

    def hamiltonian(self, kx, ky, kz):
        kx, ky, kz = np.broadcast_arrays(kx, ky, kz)
        norm = np.sqrt(kx**2 + ky**2 + kz**2)
        return (self.v * kx[..., None, None] * PAULI[0] + self.v * ky[..., None, None] * PAULI[1]
                + (self.delta + norm)[..., None, None] * PAULI[2])

    def hamiltonian_gradient(self, kx, ky, kz):
        kx, ky, kz = np.broadcast_arrays(kx, ky, kz)
        norm = np.sqrt(kx**2 + ky**2 + kz**2)
        with np.errstate(invalid="ignore", divide="ignore"):
            radial = [k / norm for k in (kx, ky, kz)]
        grad = np.zeros((3,) + kx.shape + (2, 2), complex)
        for i in range(3):
            grad[i] = radial[i][..., None, None] * PAULI[2]
        grad[0] += self.v * PAULI[0]
        grad[1] += self.v * PAULI[1]
        return grad


def make(**params):
    return Singular(**params)
'''


def _final_results(root):
    """Result files that look final (a NetCDF or figure under results/, no temporary folder)."""
    results = root / "results"
    return sorted(str(p.relative_to(root)) for p in results.rglob("*")
                  if p.is_file() and ".part" not in str(p)) if results.exists() else []


# --------------------------------------------------------------------------------------------
# config: refused at snakemake -n, naming the key
# --------------------------------------------------------------------------------------------

BAD_CONFIGS = {
    "NaN half gap": ({"model": {"valleys": [{"delta": float("nan"), "vprime": 1.0, "tau": 1}]}},
                     "model.valleys[0].delta"),
    "infinite mass": ({"model": {"mass": float("inf")}}, "model.mass"),
    "NaN eta": ({"ndd": {"eta": float("nan")}}, "ndd.eta"),
    "infinite mu": ({"quadrupolar_current": {"mu": {"start": -4.0, "stop": float("inf"),
                                                    "num": 11}}}, "quadrupolar_current.mu.stop"),
    "NaN temperature": ({"quadrupolar_current": {"temperatures": [float("nan")]}},
                        "quadrupolar_current.temperatures[0]"),
    "zero half gap": ({"model": {"valleys": [{"delta": 0.0, "vprime": 1.0, "tau": 1}]}},
                      "model.valleys[0].delta"),
    "negative half gap": ({"model": {"valleys": [{"delta": -1.0, "vprime": 1.0, "tau": 1}]}},
                          "model.valleys[0].delta"),
    "negative rho": ({"kgrid": {"window": {"k1": [-8.1, 8.1], "k3": [-5.0, 5.0]}}},
                     "kgrid.window.k1"),
    "window without k_z": ({"kgrid": {"window": {"k1": [0.0, 8.1]}}}, "kgrid.window.k3"),
    "box window without k_y": ({"kgrid": {"kind": "cartesian", "n": [8, 8, 8],
                                          "window": {"k1": [-1, 1], "k3": [-1, 1]}}},
                               "kgrid.window.k2"),
    "a billion omegas": ({"ndd": {"omega": {"start": 0.2, "stop": 8.0, "num": 1_000_000_000}}},
                         "ndd.omega.num"),
    "a billion mus": ({"quadrupolar_current": {"mu": {"start": -4.0, "stop": 4.0,
                                                      "num": 1_000_000_000}}},
                      "quadrupolar_current.mu.num"),
    "tiny temperature": ({"quadrupolar_current": {"temperatures": [1e-9]}},
                         "quadrupolar_current"),
}


@pytest.mark.parametrize("override, key", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_config_is_refused_at_dry_run(workspace, override, key):
    assert_refused_at_dry_run(workspace, override, key)
    assert _final_results(workspace.root) == []


def test_limits_are_configurable(workspace):
    override = {"ndd": {"omega": {"start": 0.2, "stop": 8.0, "num": 300_000}},
                "limits": {"max_samples": 400_000}}
    path = workspace.write_config("many.yaml", override)
    assert workspace.planned("--configfile", path)["ndd_valley"] == 2


# --------------------------------------------------------------------------------------------
# models: every k-point checked, the bad one named
# --------------------------------------------------------------------------------------------

@pytest.fixture
def singular_module(tmp_path, monkeypatch):
    (tmp_path / "qmd_singular_model.py").write_text(SINGULAR_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    return importlib.import_module("qmd_singular_model")


def test_nan_gradient_at_one_node_stops_tabulation(singular_module, tmp_path):
    grid = build_kgrid(None, "cartesian", (5, 5, 5), ((-2, 2), (-2, 2), (-2, 2)))
    path = tmp_path / "tables" / "valley1.nc"
    with pytest.raises(ModelError, match=r"singular_cone.*dH/dk is not finite at 1 of .*"
                                         r"k = \(x = 0, y = 0, z = 0\)"):
        write_table(singular_module.make(delta=1.0), grid, path, progress=False, slab_points=25)
    assert not path.exists() and list(path.parent.iterdir()) == []


class _Patchy(ValleyModel):
    """Eq. 14, broken only in a small ball around k0 (H non-Hermitian or NaN there)."""

    how = "hermitian"
    k0 = np.array([0.31, -0.2, 0.47])

    def hamiltonian(self, kx, ky, kz):
        h = super().hamiltonian(kx, ky, kz)
        near = (kx - self.k0[0]) ** 2 + (ky - self.k0[1]) ** 2 + (kz - self.k0[2]) ** 2 < 0.05**2
        h = h.copy()
        h[near] = h[near] + (0.1j * PAULI[2] if self.how == "hermitian" else np.nan)
        return h


@pytest.mark.parametrize("how, what", [("hermitian", "is not Hermitian"), ("nan", "is not finite")])
def test_small_bad_region_is_found_on_every_point(how, what):
    model = _Patchy(delta=1.0, vprime=1.0, mass=1.9)
    model.how = how
    rng = np.random.default_rng(1)
    k = rng.uniform(-1, 1, (3, 20000))
    k[:, 12345] = model.k0  # one point in the bad ball among 20000
    with pytest.raises(ModelError, match=rf"H\(k\) {what} at \d+ of 20000 k-points"):
        band_geometry(model, *k, method="sum_over_states")


class _PatchyGeneric(Model):
    """:class:`_Patchy` seen only through H(k) and ∂H/∂k (the generic route)."""

    n_bands = 2

    def __init__(self, inner):
        self.inner, self.name = inner, "patchy"

    def hamiltonian(self, kx, ky, kz):
        return self.inner.hamiltonian(kx, ky, kz)

    def hamiltonian_gradient(self, kx, ky, kz):
        return self.inner.hamiltonian_gradient(kx, ky, kz)


def test_nan_along_the_band_structure_line_is_refused():
    inner = _Patchy(delta=1.0, vprime=1.0, mass=1.9)
    inner.how, inner.k0 = "nan", np.array([0.0, 0.0, 0.5])
    with pytest.raises(ModelError, match=r"patchy.*H\(k\) is not finite at \d+ of 601 k-points"):
        band_structure([_PatchyGeneric(inner)], kz=np.linspace(-3, 3, 601))


class _WrongBands(Model):
    n_bands = 3  # H is 2x2
    name = "wrong_bands"

    def hamiltonian(self, kx, ky, kz):
        return np.broadcast_to(PAULI[2], np.shape(kx) + (2, 2)).copy()

    def hamiltonian_gradient(self, kx, ky, kz):
        return np.zeros((3,) + np.shape(kx) + (2, 2), complex)


def test_n_bands_mismatch_is_named():
    with pytest.raises(ModelError, match=r"wrong_bands.*H\(k\) has shape \(4, 2, 2\).*n_bands"):
        band_geometry(_WrongBands(), *np.zeros((3, 4)))


# --------------------------------------------------------------------------------------------
# files: non-finite content and files made for other settings are refused
# --------------------------------------------------------------------------------------------

@pytest.fixture
def small_grid():
    return build_kgrid(ValleyModel(delta=1.0, vprime=1.0, mass=1.9), "cylindrical", (8, 4, 12),
                       ((0.0, 3.0), None, (-3.0, 3.0)))


def test_nan_in_a_kgrid_weight_is_refused(tmp_path, small_grid):
    ds = small_grid.to_dataset()
    ds["weight3"].values[5] = np.nan
    path = tmp_path / "valley1.nc"
    ds.to_netcdf(path)
    with pytest.raises(io.DataError, match=r"valley1\.nc: weight3 holds a non-finite value at index 5"):
        read_kgrid(path)


def test_wrong_valley_table_is_refused(tmp_path, small_grid):
    path = tmp_path / "valley1.nc"
    valley2 = valley_section(MODEL, 1)
    write_table(ValleyModel(delta=2.0, vprime=-1.0, tau=-1, mass=1.9), small_grid, path,
                config={"model": valley2}, progress=False)
    read_table(path, model=valley2).close()  # its own valley: fine
    with pytest.raises(io.DataError, match=r"valley1\.nc was made for model = .*delta.*2\.0.*"
                                           r"this run needs model = .*delta.*1\.0"):
        read_table(path, model=valley_section(MODEL, 0))


def test_nan_in_a_stored_table_is_refused(tmp_path, small_grid):
    path = tmp_path / "valley1.nc"
    write_table(ValleyModel(delta=1.0, vprime=1.0, mass=1.9), small_grid, path,
                config={"model": valley_section(MODEL, 0)}, progress=False)
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    ds["quantum_metric"][1, 0, 2, 3, 1, 7] = np.nan
    broken = tmp_path / "broken.nc"
    ds.to_netcdf(broken)
    message = r"broken\.nc: quantum_metric holds non-finite values at k1 index 3 \(rho = "
    model = ValleyModel(delta=1.0, vprime=1.0, mass=1.9)
    # the field is refused where it is read: the whole table, its subgrid, a reduction using it
    with read_table(broken, model=valley_section(MODEL, 0)) as table:
        for read in (lambda: table.load(), lambda: half_density_table(table)["quantum_metric"].values,
                     lambda: ndd.spectrum_from_table(table, model, omega=np.linspace(2.5, 3.0, 5),
                                                     eta=0.1, transition_cutoff=5.0)):
            with pytest.raises(io.DataError, match=message):
                read()
        table["quantum_metric"][:, 0, 0].values  # g_xx: finite, read as ever


def test_a_nan_valley_is_never_dropped_from_the_sum(tmp_path):
    mu = ("mu", np.linspace(-1, 1, 5), {"units": "Delta", "long_name": "chemical potential"})
    attrs = {"units": "1", "long_name": "gamma"}
    good = xr.Dataset({"gamma_xxz": ("mu", np.ones(5), attrs)}, coords={"mu": mu})
    bad = good.copy(deep=True)
    bad["gamma_xxz"].values[2] = np.nan
    total = combine_valleys([good, bad], dim="mu")
    assert np.isnan(total["gamma_xxz"].values[2])
    path = tmp_path / "quadrupolar_current.nc"
    with pytest.raises(io.DataError, match=r"gamma_xxz holds 1 non-finite value\(s\), the first "
                                           r"at mu=0\.0; nothing was written"):
        io.write_netcdf(total, path)
    assert not path.exists() and list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# code: tracked by content
# --------------------------------------------------------------------------------------------

def test_user_code_digest_follows_local_imports(tmp_path):
    package = tmp_path / "mymodels"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "core.py").write_text("SCALE = 1.0\n")
    (package / "factory.py").write_text("import numpy\nfrom .core import SCALE\n\ndef make(**p):\n    return p\n")
    before = provenance.user_code_digest("mymodels.factory:make", tmp_path)
    (package / "core.py").write_text("SCALE = 2.0\n")
    edited = provenance.user_code_digest("mymodels.factory:make", tmp_path)
    assert edited != before
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "mymodels", moved / "mymodels")
    assert provenance.user_code_digest("mymodels.factory:make", moved) == edited
    with pytest.raises(provenance.CodeError, match="no_such_pkg"):
        provenance.user_code_digest("no_such_pkg.mod:make", tmp_path)


@pytest.mark.slow
def test_singular_user_model_fails_the_run(workspace):
    (workspace.root / "qmd_singular_model.py").write_text(SINGULAR_MODEL)
    config = workspace.write_config("singular.yaml", {
        "model": {"kind": "python", "factory": "qmd_singular_model:make",
                  "valleys": [{"delta": 1.0}, {"delta": 1.5}]},
        "kgrid": {"kind": "cartesian", "n": [5, 5, 5], "points_per_eta": 0,
                  "window": {"k1": [-2, 2], "k2": [-2, 2], "k3": [-2, 2]}},
        "ndd": {"transition_cutoff": 6.0, "omega": {"start": 0.5, "stop": 3.0, "num": 11},
                "eta": 0.3},
        "quadrupolar_current": {"mu": {"start": -1, "stop": 1, "num": 11}, "temperatures": []},
    })
    proc = workspace.snakemake("results/reductions/quadrupolar_current.nc", "--cores", "2",
                               "--configfile", config, check=False)
    assert proc.returncode != 0
    # both valleys are singular at k = 0; whichever job met it first (gamma's pilot on its grid,
    # or a table) stopped the run
    log = "".join(p.read_text() for p in (workspace.root / "logs").rglob("*.log"))
    assert "dH/dk is not finite" in log and "k = (x = 0, y = 0, z = 0)" in log, log[-3000:]
    assert not [p for p in _final_results(workspace.root) if "tables" in p or "reductions" in p]


@pytest.mark.slow
def test_user_model_edit_reruns_and_a_moved_package_does_not(workspace):
    args = ("--configfile", "examples/user_model.yaml", "--config", "kgrid={n: [6, 6, 6]}")
    workspace.snakemake("results/kgrid/valley1.nc", "--cores", "1", *args)
    assert workspace.planned("results/kgrid/valley1.nc", *args) == {}

    # the same package from another place (another install): nothing to re-run
    elsewhere = workspace.root.parent / "site"
    shutil.copytree(workspace.package, elsewhere / "qmdipole")
    env = {**workspace.env(), "PYTHONPATH": str(elsewhere)}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1",
                           "results/kgrid/valley1.nc", *args], cwd=workspace.root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]

    # an edit of the user's model re-runs its stages
    source = workspace.root / "examples" / "user_model.py"
    source.write_text(source.read_text() + "\n# an edit\n")
    assert workspace.planned("results/kgrid/valley1.nc", *args) == {"kgrid": 1}


@pytest.mark.slow
def test_table_of_another_valley_is_refused_by_the_reduction(workspace):
    tables = ("results/tables/valley1.nc", "results/tables/valley2.nc")
    workspace.snakemake(*tables, "--cores", "2", "--configfile", "config/ci.yaml")
    shutil.copy(workspace.root / tables[1], workspace.root / tables[0])
    target = "results/reductions/valley1/ndd_spectrum.nc"
    proc = workspace.snakemake(target, "--cores", "1", "--configfile", "config/ci.yaml", check=False)
    assert proc.returncode != 0
    log = (workspace.root / "logs/reductions/valley1/ndd_spectrum.log").read_text()
    assert "was made for model" in log, log[-3000:]
    assert not (workspace.root / target).exists()
