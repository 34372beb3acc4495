"""Figures: files written, vector PDF, PNG resolution, byte-identical re-renders, drawn from the data."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from qmdipole import figures
from qmdipole.band_structure import band_structure
from qmdipole.io import open_dataset, write_netcdf
from qmdipole.models import ValleyModel
from qmdipole.qmd_field import qmd_field

DPI = 120  # small to keep the tests quick; one test renders at the 300 dpi of the config


def _attrs(units, long_name):
    return {"units": units, "long_name": long_name}


def band_structure_dataset():
    models = [ValleyModel(delta=1.0, vprime=1.0, tau=1, mass=1.9),
              ValleyModel(delta=2.0, vprime=-1.0, tau=-1, mass=1.9)]
    return band_structure(models, np.linspace(-3, 3, 121))


def qmd_field_dataset():
    return qmd_field(ValleyModel(delta=1.0, vprime=1.0, tau=1, mass=1.9), k_max=2.5, n=31,
                     kx_max=np.inf, n_kx=48, valley=1)


def ndd_dataset(n=301, eta=0.02):
    """Synthetic spectrum with the names of results/reductions/ndd_spectrum.nc."""
    omega = np.linspace(0.2, 8.0, n)
    z = omega + 1j * eta
    gaps, signs = np.array([2.0, 4.0]), np.array([1.0, -1.0])
    dn = np.stack([s * 0.02j / np.sqrt(z / g - 1 + 0j) for g, s in zip(gaps, signs)])
    avg = np.stack([s * 0.3 * np.sqrt(np.clip(omega / g - 1, 0, None)) * np.exp(-np.clip(omega - g, 0, None))
                    for g, s in zip(gaps, signs)])
    return xr.Dataset(
        {
            "re_delta_n": ("omega", dn.sum(0).real, _attrs("alpha", "Re Delta n")),
            "im_delta_n": ("omega", dn.sum(0).imag, _attrs("alpha", "Im Delta n")),
            "avg_qmd": ("omega", avg.sum(0), _attrs("Delta^2", "averaged quantum metric dipole")),
            "re_delta_n_valley": (("valley", "omega"), dn.real, _attrs("alpha", "Re Delta n, per valley")),
            "im_delta_n_valley": (("valley", "omega"), dn.imag, _attrs("alpha", "Im Delta n, per valley")),
            "avg_qmd_valley": (("valley", "omega"), avg, _attrs("Delta^2", "<G>, per valley")),
            "re_delta_n_kubo": ("omega", dn.sum(0).real, _attrs("alpha", "Re Delta n, Kubo")),
            "im_delta_n_kubo": ("omega", dn.sum(0).imag, _attrs("alpha", "Im Delta n, Kubo")),
            "optical_gap": ("valley", gaps, _attrs("Delta", "minimum transition energy")),
        },
        coords={"omega": ("omega", omega, _attrs("Delta", "photon energy")),
                "valley": ("valley", [1, 2], _attrs("1", "valley number"))},
        attrs={"eta": eta, "mu": 0.0, "temperature": 0.0},
    )


def quadrupolar_dataset(n=201, temperatures=(0.05, 0.1)):
    """Synthetic γ_xxz(μ) with the names of results/reductions/quadrupolar_current.nc."""
    mu = np.linspace(-4, 4, n)
    cb, signs = np.array([0.05, 1.05]), np.array([1.0, -1.0])
    g = np.stack([s * np.sqrt(np.clip(np.abs(mu) - c, 0, None)) * np.exp(-np.clip(np.abs(mu) - c, 0, None))
                  for c, s in zip(cb, signs)])
    gt = np.stack([g.sum(0) * (1 - t) for t in temperatures]) if temperatures else np.zeros((0, n))
    units = "e^2/(16 pi^2 hbar)"
    return xr.Dataset(
        {
            "gamma_xxz": ("mu", g.sum(0), _attrs(units, "gamma_xxz, T = 0")),
            "gamma_xxz_valley": (("valley", "mu"), g, _attrs(units, "gamma_xxz per valley")),
            "gamma_xxz_temperature": (("temperature", "mu"), gt, _attrs(units, "gamma_xxz at T")),
            "band_edge_conduction": ("valley", cb, _attrs("Delta", "conduction band edge")),
            "band_edge_valence": ("valley", -cb, _attrs("Delta", "valence band edge")),
        },
        coords={"mu": ("mu", mu, _attrs("Delta", "chemical potential")),
                "valley": ("valley", [1, 2], _attrs("1", "valley number")),
                "temperature": ("temperature", np.array(temperatures, float), _attrs("Delta", "k_B T"))},
    )


def convergence_dataset():
    n = np.array([1e3, 8e3, 6.4e4, 5.12e5])
    return xr.Dataset(
        {"max_error": (("kind", "n_points"), np.stack([2 * n ** (-2 / 3), 0.5 * n ** (-2 / 3)]),
                       _attrs("1", "max. relative error")),
         "gamma_error": ("n_points", 3 * n ** (-1.0), _attrs("1", "gamma_xxz relative error")),
         "gamma_xxz": (("n_points", "mu"), np.ones((4, 3)), _attrs("1", "curves: not an error")),
         "not_a_curve": ("kind", [1.0, 2.0], _attrs("1", "no n_points dim: not drawn"))},
        coords={"n_points": ("n_points", n, _attrs("1", "number of k-points")),
                "kind": ("kind", ["ndd", "kubo"], _attrs("1", "quantity")),
                "mu": ("mu", [-1.0, 0.0, 1.0], _attrs("Delta", "chemical potential"))},
    )


CASES = {
    "band_structure": (figures.plot_band_structure, band_structure_dataset),
    "qmd_field": (figures.plot_qmd_field, qmd_field_dataset),
    "ndd_spectrum": (figures.plot_ndd_spectrum, ndd_dataset),
    "quadrupolar_current": (figures.plot_quadrupolar_current, quadrupolar_dataset),
    "convergence": (figures.plot_convergence, convergence_dataset),
}


@pytest.fixture(scope="module")
def datasets():
    return {name: make() for name, (_, make) in CASES.items()}


def _png_dpi(path):
    with Image.open(path) as image:
        return image.info["dpi"], image.size


@pytest.mark.parametrize("name", list(CASES))
def test_files_vector_pdf_png_dpi(name, datasets, tmp_path):
    plot, _ = CASES[name]
    prefix = tmp_path / "sub" / f"fig_{name}.v1"  # a dot in the prefix must not be eaten
    plot(datasets[name], prefix, dpi=DPI)
    pdf, png = Path(f"{prefix}.pdf"), Path(f"{prefix}.png")
    assert pdf.is_file() and png.is_file()
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert b"/Subtype /Image" not in data  # vector only: no embedded raster
    assert b"CreationDate" not in data
    (dpi_x, dpi_y), (width, _) = _png_dpi(png)
    assert round(dpi_x) >= DPI and round(dpi_y) >= DPI
    assert width == round(3.4 * DPI)  # the single-column width of the style
    assert not list(tmp_path.glob("sub/.*.part"))  # atomic writes leave no temporaries


@pytest.mark.parametrize("name", list(CASES))
def test_rerender_is_byte_identical(name, datasets, tmp_path):
    plot, _ = CASES[name]
    plot(datasets[name], tmp_path / "a", dpi=DPI)
    plot(datasets[name], tmp_path / "b", dpi=DPI)
    for ext in ("pdf", "png"):
        assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes(), ext


def test_rerender_in_another_process_is_byte_identical(datasets, tmp_path):
    """Another interpreter (other hash seed) writes the same bytes from the same NetCDF."""
    path = tmp_path / "bands.nc"
    write_netcdf(datasets["band_structure"], path)
    with open_dataset(path) as ds:
        figures.plot_band_structure(ds, tmp_path / "here", dpi=DPI)
    code = ("import sys; from qmdipole import figures, io\n"
            "with io.open_dataset(sys.argv[1]) as ds:\n"
            f"    figures.plot_band_structure(ds, sys.argv[2], dpi={DPI})\n")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "there")], check=True, env=env)
    for ext in ("pdf", "png"):
        assert (tmp_path / f"here.{ext}").read_bytes() == (tmp_path / f"there.{ext}").read_bytes(), ext


def test_png_at_config_resolution(datasets, tmp_path):
    figures.plot_qmd_field(datasets["qmd_field"], tmp_path / "fig3", dpi=300)
    (dpi_x, _), (width, _) = _png_dpi(tmp_path / "fig3.png")
    assert round(dpi_x) == 300 and width == 1020


@pytest.mark.parametrize("name", ["band_structure", "qmd_field"])
def test_renders_from_netcdf_roundtrip(name, datasets, tmp_path):
    """What the pipeline does: write with qmdipole.io (CF check + provenance), reopen, draw."""
    plot, _ = CASES[name]
    write_netcdf(datasets[name], tmp_path / "data.nc")
    with open_dataset(tmp_path / "data.nc") as ds:
        plot(ds, tmp_path / "fig", dpi=DPI)
    assert (tmp_path / "fig.pdf").is_file()


def test_figures_module_computes_no_physics():
    """figures.py imports no model/geometry/reduction code: it can only draw what it is given."""
    tree = ast.parse(Path(figures.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add("." if node.level else node.module.split(".")[0])
    assert imported <= {"__future__", "os", "re", "tempfile", "contextlib", "pathlib", "matplotlib",
                        "numpy", "xarray"}


def _lines(fig):
    return [line for ax in fig.axes for line in ax.get_lines()]


def _drawn(fig, values):
    values = np.asarray(values, dtype=float)
    return any(np.asarray(line.get_ydata(), float).shape == values.shape
               and np.allclose(line.get_ydata(), values) for line in _lines(fig))


def test_curves_are_the_dataset_values(datasets):
    import matplotlib.pyplot as plt

    ds = datasets["band_structure"]
    fig = figures.draw_band_structure(ds)
    for v in (1, 2):
        for b in (0, 1):
            assert _drawn(fig, ds["energy"].sel(valley=v, band=b))
    plt.close(fig)

    ds = datasets["ndd_spectrum"]
    fig = figures.draw_ndd_spectrum(ds)
    for name in ("re_delta_n", "im_delta_n", "avg_qmd"):
        assert _drawn(fig, ds[name])
        for v in (1, 2):
            assert _drawn(fig, ds[f"{name}_valley"].sel(valley=v))
    plt.close(fig)

    ds = datasets["quadrupolar_current"]
    fig = figures.draw_quadrupolar_current(ds)
    assert _drawn(fig, ds["gamma_xxz"])
    for t in ds["temperature"].values:
        assert _drawn(fig, ds["gamma_xxz_temperature"].sel(temperature=t))
    plt.close(fig)


def test_changed_data_changes_the_figure(datasets, tmp_path):
    ds = datasets["quadrupolar_current"]
    figures.plot_quadrupolar_current(ds, tmp_path / "a", dpi=DPI)
    figures.plot_quadrupolar_current(ds.assign(gamma_xxz=2 * ds["gamma_xxz"]), tmp_path / "b", dpi=DPI)
    assert (tmp_path / "a.pdf").read_bytes() != (tmp_path / "b.pdf").read_bytes()


def test_quadrupolar_without_finite_temperature(tmp_path):
    figures.plot_quadrupolar_current(quadrupolar_dataset(temperatures=()), tmp_path / "t0", dpi=DPI)
    assert (tmp_path / "t0.png").is_file()


def test_convergence_draws_every_n_points_variable(datasets):
    import matplotlib.pyplot as plt

    fig = figures.draw_convergence(datasets["convergence"])
    labels = [line.get_label() for line in _lines(fig)]
    assert sum("max. relative error" in lab for lab in labels) == 2  # one per kind
    assert sum("gamma_xxz relative error" in lab for lab in labels) == 1
    assert not any("not drawn" in lab or "not an error" in lab for lab in labels)
    assert any("N^{-2/3}" in lab for lab in labels)  # the O(h^2) reference slope
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"
    plt.close(fig)
    fig = figures.draw_convergence(datasets["convergence"], variables=["gamma_error"])
    assert sum(line.get_label() != "_nolegend_" and "N^" not in line.get_label()
               for line in _lines(fig)) == 1
    plt.close(fig)
    with pytest.raises(ValueError, match="n_points"):
        figures.draw_convergence(datasets["convergence"].drop_dims("n_points"))


def test_axis_labels_carry_units(datasets):
    import matplotlib.pyplot as plt

    fig = figures.draw_qmd_field(datasets["qmd_field"])
    ax, cax = fig.axes
    assert r"\Delta/\hbar v" in ax.get_xlabel() and r"\Delta/\hbar v" in ax.get_ylabel()
    assert r"\hbar^2 v^2/\Delta" in cax.get_ylabel()
    plt.close(fig)
    assert figures.unit_label("e^2/(16 pi^2 hbar)") == r"$e^2/16\pi^2\hbar$"
    assert figures.unit_label("1") == ""


@pytest.mark.parametrize("units, label", [
    # model units (units_label of qmdipole.units): powers collected, negative ones below the bar
    ("Delta", r"$\Delta$"),
    ("Delta/(hbar v)", r"$\Delta/\hbar v$"),
    ("(Delta/(hbar v))^3", r"$\Delta^3/\hbar^3 v^3$"),
    ("Delta (hbar v/Delta)^2", r"$\hbar^2 v^2/\Delta$"),
    ("Delta^2", r"$\Delta^2$"),
    ("alpha", r"$\alpha$"),
    ("e**2/(16*pi**2*hbar)", r"$e^2/16\pi^2\hbar$"),
    # udunits strings: integer exponents written after the symbol, products by space or '.'
    ("eV", r"$\mathrm{eV}$"),
    ("eV2", r"$\mathrm{eV}^2$"),
    ("angstrom-1", r"$\mathrm{\AA}^{-1}$"),
    ("eV angstrom2", r"$\mathrm{eV}\,\mathrm{\AA}^2$"),
    ("cm-1", r"$\mathrm{cm}^{-1}$"),
    ("S m-1", r"$\mathrm{S}\,\mathrm{m}^{-1}$"),
    ("m.s-1", r"$\mathrm{m}\,\mathrm{s}^{-1}$"),
    ("eV 2", r"$\mathrm{eV}\,2$"),  # a space: the factor 2, not a square
    ("1", ""),
    (None, ""),
    # unknown symbols as they are written; a string outside the grammar verbatim
    ("furlongs", r"$\mathrm{furlongs}$"),
    ("eV/", "eV/"),
    ("(eV", "(eV"),
    ("eV^", "eV^"),
    ("m%", "m%"),
])
def test_unit_label_renders_unit_strings(units, label):
    from matplotlib.mathtext import MathTextParser

    assert figures.unit_label(units) == label
    if label.startswith("$"):  # mathtext that matplotlib can draw
        MathTextParser("path").parse(label)


def test_custom_style_file_is_used(datasets, tmp_path):
    style = tmp_path / "red.mplstyle"
    style.write_text(Path(figures.STYLE).read_text() + "\nsavefig.facecolor: red\n")
    figures.plot_ndd_spectrum(datasets["ndd_spectrum"], tmp_path / "fig", dpi=DPI, style=style)
    with Image.open(tmp_path / "fig.png") as image:
        assert image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_a_material_gamma_is_drawn_in_siemens_and_one_valley_as_its_total():
    """Physical energies (eV): Fig. 4b draws gamma_xxz_si (S), not e²/(16π²ħ); a single valley
    has no separate per-valley curve."""
    import matplotlib.pyplot as plt

    ds = quadrupolar_dataset().isel(valley=[0])
    ds["mu"].attrs.update(units="eV")
    ds["temperature"].attrs.update(units="eV")
    for name, target in (("gamma_xxz", "gamma_xxz_si"), ("gamma_xxz_valley", "gamma_xxz_si_valley"),
                         ("gamma_xxz_temperature", "gamma_xxz_temperature_si")):  # units.companions' names
        ds[target] = (ds[name] * 2.5e-6).assign_attrs(_attrs("S", "gamma in siemens"))
    fig = figures.draw_quadrupolar_current(ds)
    assert _drawn(fig, ds["gamma_xxz_si"]) and not _drawn(fig, ds["gamma_xxz"])
    assert "S" in fig.axes[0].get_ylabel() and "16" not in fig.axes[0].get_ylabel()
    assert not any(line.get_label() == "valley 1" for line in _lines(fig))
    plt.close(fig)


def test_a_material_spectrum_adds_the_absorption_difference(datasets):
    """Physical energies: Fig. 4a gains a Δα (cm⁻¹) panel between Δn and ⟨G⟩, with its curve."""
    import matplotlib.pyplot as plt

    ds = datasets["ndd_spectrum"].copy()
    ds["delta_alpha"] = (ds["im_delta_n"] * ds["omega"] * 3.0).assign_attrs(_attrs("cm-1", "Delta alpha"))
    ds["delta_alpha_error"] = (0.05 * abs(ds["delta_alpha"])).assign_attrs(_attrs("cm-1", "error"))
    ds["delta_alpha_valley"] = (ds["im_delta_n_valley"] * ds["omega"] * 3.0).assign_attrs(
        _attrs("cm-1", "per valley"))
    fig = figures.draw_ndd_spectrum(ds)
    assert len(fig.axes) == 3 and _drawn(fig, ds["delta_alpha"]) and _drawn(fig, ds["avg_qmd"])
    assert "cm" in fig.axes[1].get_ylabel()
    plt.close(fig)
    assert len(figures.draw_ndd_spectrum(datasets["ndd_spectrum"]).axes) == 2
