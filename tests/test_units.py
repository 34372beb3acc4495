"""Units: the vocabulary parses in udunits and converts as the dimensions say; Δα and γ in SI
against hand computations with scipy.constants; unit-free responses do not change with units."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.constants as sc
import xarray as xr

from qmdipole import io, units
from qmdipole.units import UnitSystem, UnitsError

cf_units = pytest.importorskip("cf_units")

EV_A = UnitSystem("eV", "angstrom")
MEV_NM = UnitSystem("meV", "nm")
# SI value of one unit of each quantity in eV and angstrom (ħ = 1: a momentum is 1/length)
SI = {
    "ENERGY": sc.e, "MOMENTUM": 1 / sc.angstrom, "VELOCITY": sc.e * sc.angstrom,
    "AREA": sc.angstrom**2, "K_VOLUME": sc.angstrom**-3, "QMD_FIELD": sc.e * sc.angstrom**2,
    "ENERGY_SQUARED": sc.e**2,
}
SI_UNITS = {"ENERGY": "J", "MOMENTUM": "m-1", "VELOCITY": "J m", "AREA": "m2", "K_VOLUME": "m-3",
            "QMD_FIELD": "J m2", "ENERGY_SQUARED": "J2"}


@pytest.mark.parametrize("name", sorted(SI))
def test_physical_units_parse_and_convert_as_their_dimensions(name):
    quantity = getattr(units, name)
    unit = cf_units.Unit(quantity.units(EV_A))
    assert unit.convert(1.0, cf_units.Unit(SI_UNITS[name])) == pytest.approx(SI[name], rel=1e-6)
    # meV and nm: the same dimensions, other scales
    scale = (1e-3 ** quantity.energy) * (10.0 ** quantity.length)  # meV/eV, nm/angstrom
    other = cf_units.Unit(quantity.units(MEV_NM))
    assert other.convert(1.0, unit) == pytest.approx(scale, rel=1e-9)


def test_every_unit_string_parses():
    strings = {q.units(s) for q in units.VOCABULARY.values()
               for s in (UnitSystem(), EV_A, MEV_NM)}
    strings |= {units.NUMBER["units"], units.ANGLE["units"], units.SIEMENS, units.WAVENUMBER_UNITS}
    for text in strings:
        cf_units.Unit(text)  # raises ValueError if udunits cannot parse it
    assert units.ENERGY.attrs() == {"units": "1", "units_label": "Delta"}
    assert units.ALPHA.attrs(EV_A) == {"units": "1", "units_label": "alpha"}  # unit-free


def test_system_defaults_and_refusals():
    assert units.system({}) == UnitSystem()
    assert units.system({"model": {"kind": "lattice"}, "units": {"energy": "auto"}}) == UnitSystem()
    assert units.system({"model": {"kind": "wannier90"}}) == EV_A
    assert units.system({"model": {"kind": "valley"},
                         "units": {"energy": "meV", "length": "nm"}}) == MEV_NM
    with pytest.raises(UnitsError, match="wannier90 model is in eV and angstrom"):
        units.system({"model": {"kind": "wannier90"}, "units": {"energy": "meV"}})
    with pytest.raises(UnitsError, match="both in model units or both physical"):
        units.system({"units": {"energy": "eV", "length": "model"}})
    with pytest.raises(UnitsError, match="units.energy must be one of"):
        UnitSystem("J", "angstrom")


def _spectrum(omega, im, error):
    attrs = {**units.ALPHA.attrs(), "long_name": "Im Delta n"}
    return xr.Dataset(
        {"im_delta_n": ("omega", im, attrs),
         "re_delta_n": ("omega", 2 * im, {**attrs, "long_name": "Re Delta n"}),
         "im_delta_n_error": ("omega", error, {**attrs, "long_name": "error",
                                               "max_relative_to_peak": 0.0})},
        coords={"omega": ("omega", omega, {**units.ENERGY.attrs(), "long_name": "photon energy"})})


def test_delta_alpha_is_the_absorption_difference_of_the_two_waves():
    """Δα = α(+z) − α(−z) with α = 2ω Im n/c of each wave, by hand for ħω = 1.5 eV."""
    omega, im = np.array([0.5, 1.5]), np.array([0.3, -0.2])  # Im Δn in units of α
    spectrum = _spectrum(omega, im, 0.1 * np.abs(im))
    out = units.apply(spectrum, EV_A)
    assert spectrum["omega"].attrs["units"] == "1" and "delta_alpha" not in spectrum  # a copy
    w = 1.5 * sc.e / sc.hbar  # rad/s
    n_plus, n_minus = 1.0 + 0.5j * (-0.2 * sc.alpha), 1.0 - 0.5j * (-0.2 * sc.alpha)  # Δn = n₊ − n₋
    by_hand = (2 * w * n_plus.imag / sc.c - 2 * w * n_minus.imag / sc.c) / 100  # 1/m -> 1/cm
    assert out["delta_alpha"].attrs["units"] == "cm-1"
    assert float(out["delta_alpha"][1]) == pytest.approx(by_hand, rel=1e-12)
    np.testing.assert_allclose(out["delta_alpha_error"], 0.1 * np.abs(out["delta_alpha"]), rtol=1e-12)
    assert out["delta_alpha_error"].attrs["max_relative_to_peak"] == pytest.approx(0.1)
    # meV: the same ħω in meV gives a thousand times less per unit of ω
    mev = units.apply(_spectrum(omega * 1e3, im, 0 * im), MEV_NM)
    np.testing.assert_allclose(mev["delta_alpha"], out["delta_alpha"], rtol=1e-12)
    # relabelled: ω in eV, Δn still in α (unit-free), no Δα in model units
    assert out["omega"].attrs["units"] == "eV" and "units_label" not in out["omega"].attrs
    assert out["im_delta_n"].attrs == units.apply(_spectrum(omega, im, im), UnitSystem())["im_delta_n"].attrs
    assert "delta_alpha" not in units.apply(_spectrum(omega, im, im), UnitSystem())


def test_gamma_in_siemens():
    attrs = {**units.GAMMA.attrs(), "long_name": "gamma_xxz"}
    ds = xr.Dataset({"gamma_xxz": ("mu", [1.0, -2.0], attrs),
                     "gamma_xxz_error": ("mu", [0.1, 0.1], {**attrs, "max_relative_to_peak": 0.05}),
                     "gamma_xxz_valley": (("valley", "mu"), [[1.0, -1.0], [0.0, -1.0]], attrs)})
    out = units.apply(units.apply(ds, UnitSystem()), EV_A)  # applying twice changes nothing
    # e²/(16π²ħ) from the conductance quantum G₀ = 2e²/h = e²/(πħ): G₀/(16π) = 1.5414e-6 S
    e2_16pi2hbar = sc.physical_constants["conductance quantum"][0] / (16 * np.pi)
    assert e2_16pi2hbar == pytest.approx(1.5414e-6, rel=1e-4)
    np.testing.assert_allclose(out["gamma_xxz_si"], [e2_16pi2hbar, -2 * e2_16pi2hbar], rtol=1e-12)
    np.testing.assert_allclose(out["gamma_xxz_si_error"], 0.1 * e2_16pi2hbar, rtol=1e-12)
    np.testing.assert_allclose(out["gamma_xxz_si_valley"].sum("valley"), out["gamma_xxz_si"])
    assert out["gamma_xxz_si"].attrs["units"] == "S" and "units_label" not in out["gamma_xxz_si"].attrs
    assert out["gamma_xxz"].attrs["units_label"] == units.GAMMA.label
    assert not any(name.endswith("_si_si") for name in out)


@pytest.mark.filterwarnings("ignore:the k-grid resolves")  # a coarse grid, the same in both units
def test_unit_free_responses_do_not_change_with_units():
    """γ/(e²/16π²ħ) and Δn/α of the Eq. 14 model given in eV and Å (Δ = 0.05 eV, ħv = 2 eV Å)
    equal those of the same model in model units, through the pipeline's own code."""
    from qmdipole.kgrid import build_kgrid
    from qmdipole.models import ValleyModel
    from qmdipole.ndd import spectrum_from_table
    from qmdipole.quadrupolar import gamma_from_table
    from qmdipole.tabulate import tabulate

    delta, hbar_v = 0.05, 2.0
    k = delta / hbar_v  # 1/Å per Δ/(ħv)
    # H_phys(k) = Δ H_model(k/k): v, v' scale by ħv, k_z²/2m by Δ/k² (m by k²/Δ)
    model = ValleyModel(delta=1.0, vprime=1.0, tau=1, v=1.0, mass=1.9)
    physical = ValleyModel(delta=delta, vprime=hbar_v, tau=1, v=hbar_v, mass=1.9 * k**2 / delta)
    results = []
    for m, scale, kscale in ((model, 1.0, 1.0), (physical, delta, k)):
        grid = build_kgrid(m, "cylindrical", (24, 4, 40), ((0.0, 6.0 * kscale), None,
                                                           (-8.0 * kscale, 4.0 * kscale)))
        table = tabulate(m, grid).compute()
        gamma = gamma_from_table(table, mu=np.array([1.2, 1.5, 2.0]) * scale)
        spectrum = spectrum_from_table(table, m, omega=np.array([2.5, 3.0]) * scale,
                                       eta=0.3 * scale, kubo=False, transition_cutoff=6.0 * scale)
        results.append((gamma["gamma_xxz"].values, spectrum["re_delta_n"].values,
                        spectrum["im_delta_n"].values, spectrum["avg_qmd"].values / scale**2))
    for got, expected in zip(*results):
        assert np.abs(expected).max() > 0
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-12 * np.abs(expected).max())


def test_written_files_carry_the_run_units(tmp_path):
    ds = _spectrum(np.array([0.5, 1.5]), np.array([0.3, -0.2]), np.array([0.01, 0.01]))
    ds["dir"] = ("dir", ["x", "y", "z"], {"long_name": "Cartesian direction"})
    config = {"model": {"kind": "valley", "mass": np.float64(1.9)},
              "units": {"energy": "eV", "length": "angstrom"}}
    path = io.write_netcdf(ds, tmp_path / "s.nc", config=config)
    with xr.open_dataset(path) as back:
        assert back["omega"].attrs["units"] == "eV"
        assert back["delta_alpha"].attrs["units"] == "cm-1"
        assert list(back["dir"].values) == ["x", "y", "z"]
        assert "eV" in back.attrs["units_system"]
        assert back["omega"].encoding.get("_FillValue") is None
        assert back["im_delta_n"].encoding["zlib"]
    with xr.open_dataset(io.write_netcdf(ds, tmp_path / "m.nc")) as back:
        assert back["omega"].attrs == {**units.ENERGY.attrs(), "long_name": "photon energy"}
        assert "delta_alpha" not in back


def test_units_label_outside_the_vocabulary_is_refused(tmp_path):
    ds = xr.Dataset({"a": ("x", [1.0], {"units": "1", "units_label": "furlongs",
                                        "long_name": "a"})})
    with pytest.raises(io.DataError, match="furlongs"):
        io.write_netcdf(ds, tmp_path / "a.nc")
