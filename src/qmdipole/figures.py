"""Publication figures drawn from the NetCDF outputs (Figs. 2, 3, 4a, 4b and a convergence plot).

Every ``plot_*`` function has the signature ``(ds, prefix, dpi=300, *, style=None)`` and writes
``<prefix>.pdf`` (vector) and ``<prefix>.png`` (``dpi``). The drawing is done by a matching
``draw_*(ds) -> Figure`` so that tests can inspect what was drawn.

Rules kept here:

* Figures are drawn only from the Dataset: no physics is computed in this module (it imports no
  model or geometry code). Labels take their units from the variables' ``units`` attributes.
* One shared style, ``paper.mplstyle`` next to this module (single-column, 3.4 in wide); pass
  ``style=`` to use another file.
* Reproducible bytes: no creation dates in the PDF, no software tag in the PNG, files written
  atomically (temporary file + rename); rendering the same Dataset twice gives identical files.

Variable names follow the data contract of the README ("What lands where"):

* Fig. 2, :func:`plot_band_structure`: the output of :func:`qmdipole.band_structure.band_structure`.
* Fig. 3, :func:`plot_qmd_field`: the output of :func:`qmdipole.qmd_field.qmd_field`.
* Fig. 4a, :func:`plot_ndd_spectrum`: ``results/reductions/ndd_spectrum.nc``.
* Fig. 4b, :func:`plot_quadrupolar_current`: ``results/reductions/quadrupolar_current.nc``.
* validation, :func:`plot_convergence`: the ``*error*`` variables with an ``n_points`` dimension
  (e.g. ``max_error`` of :func:`qmdipole.validation.gamma_convergence`).
"""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

STYLE = Path(__file__).with_name("paper.mplstyle")

#: symbols of a unit string drawn as math (italic or Greek); any other symbol is a unit name,
#: drawn upright (``angstrom`` as Å)
_MATH_SYMBOLS = {"Delta": r"\Delta", "hbar": r"\hbar", "alpha": r"\alpha", "pi": r"\pi",
                 "v": "v", "e": "e"}
_UNIT_NAMES = {"angstrom": r"\AA", "Angstrom": r"\AA"}
# a unit string: symbols, integers, exponents (``^2``, ``**2``, or udunits' ``angstrom-1``),
# products (space, '.', '*'), quotients ('/') and parentheses
_UNIT_TOKEN = re.compile(r"\s*(?:(?P<symbol>[A-Za-z]+)|(?P<number>\d+)|(?P<power>\^|\*\*)"
                         r"|(?P<op>[()/.*]))")
_EXPONENT = re.compile(r"[+-]?\d+")

# per-valley line styles (valley 1, 2, ...); totals are solid
_VALLEY_DASHES = ["--", ":", "-.", (0, (5, 1, 1, 1, 1, 1))]
_INK = "0.15"
_GUIDE = "0.55"


class _UnitSyntaxError(ValueError):
    """A unit string outside the grammar of :func:`unit_label`."""


def _unit_tokens(units: str) -> list[tuple[str, str | int]]:
    """(kind, value) tokens of a unit string: ``symbol``, ``number``, ``exponent`` (an int),
    ``op`` (one of ``()/.*``). An integer written right after a symbol or ')' (udunits'
    ``angstrom-1``, ``eV2``) or after ``^``/``**`` is an exponent."""
    tokens, pos = [], 0
    while units[pos:].strip():
        match = _UNIT_TOKEN.match(units, pos)
        if match is None:
            raise _UnitSyntaxError(units)
        kind, value, pos = match.lastgroup, match.group(match.lastgroup), match.end()
        if kind != "power":
            tokens.append((kind, value))
        if kind in ("power", "symbol") or value == ")":
            exponent = _EXPONENT.match(units, pos)
            if exponent is not None:
                tokens.append(("exponent", int(exponent.group())))
                pos = exponent.end()
            elif kind == "power":
                raise _UnitSyntaxError(units)
    return tokens


def _unit_factors(units: str) -> dict[str, int]:
    """{symbol or integer: total exponent} of a unit string, in order of first appearance.

    Products by space, '.' or '*'; '/' divides by the next factor (left to right, as udunits
    reads it); an exponent applies to the symbol or parenthesised group before it.
    """
    tokens = _unit_tokens(units)

    def factor() -> dict[str, int]:  # a symbol, an integer or a parenthesised group, ^ exponent
        kind, value = tokens.pop(0) if tokens else (None, None)
        if kind in ("symbol", "number"):
            found = {value: 1}
        elif (kind, value) == ("op", "("):
            found = product(closing=")")
        else:
            raise _UnitSyntaxError(units)
        power = tokens.pop(0)[1] if tokens and tokens[0][0] == "exponent" else 1
        return {key: power * value for key, value in found.items()}

    def product(closing=None) -> dict[str, int]:  # factors up to ``closing`` (None: the end)
        found, sign = {}, 1
        while True:
            for key, value in factor().items():
                found[key] = found.get(key, 0) + sign * value
            if not tokens:
                if closing is None:
                    return found
                raise _UnitSyntaxError(units)
            kind, value = tokens[0]
            if (kind, value) == ("op", closing):
                tokens.pop(0)
                return found
            if kind == "op" and value in "/.*":
                tokens.pop(0)
            sign = -1 if value == "/" else 1

    return product() if tokens else {}


def _power(base: str, exponent: int) -> str:
    """``base`` to the power ``exponent`` in mathtext (braces for more than one character)."""
    if exponent == 1:
        return base
    return f"{base}^{exponent}" if 0 <= exponent < 10 else f"{base}^{{{exponent}}}"


def _join(parts: list[tuple[str, bool]]) -> str:
    """Mathtext of (text, upright) factors: a thin space beside a unit name; between math
    symbols a space where a letter follows a letter or digit (``\\hbar^2 v``), else none."""
    out = ""
    for i, (text, upright) in enumerate(parts):
        if i:
            previous, prev_upright = parts[i - 1]
            if upright or prev_upright:
                out += r"\,"
            elif previous[-1].isalnum() and text[0].isalpha():
                out += " "
        out += text
    return out


def unit_label(units: str | None) -> str:
    """Mathtext of a unit string: ``"angstrom-1"`` -> ``$\\mathrm{\\AA}^{-1}$``, ``"eV2"`` ->
    ``$\\mathrm{eV}^2$``, ``"Delta (hbar v/Delta)^2"`` -> ``$\\hbar^2 v^2/\\Delta$``; ``""`` for
    ``"1"``; a string outside the grammar (see :func:`_unit_factors`) verbatim.

    Powers of a symbol are collected; math symbols (Δ, ħ, v, e, α, π and integers) with negative
    powers go below a fraction bar, unit names (upright, e.g. eV, Å, cm, S) keep theirs.
    """
    text = str(units or "")
    try:
        factors = _unit_factors(text)
    except _UnitSyntaxError:
        return text
    above, below = [], []
    for symbol, exponent in factors.items():
        if exponent == 0 or symbol.isdigit() and int(symbol) == 1:
            continue
        math = symbol.isdigit() or symbol in _MATH_SYMBOLS
        base = (symbol if symbol.isdigit() else _MATH_SYMBOLS[symbol] if math
                else rf"\mathrm{{{_UNIT_NAMES.get(symbol, symbol)}}}")
        if math and exponent < 0:
            below.append((_power(base, -exponent), False))
        else:
            above.append((_power(base, exponent), not math))
    if not above and not below:
        return ""
    if not above:  # only math symbols with negative powers: 1/x
        above = [("1", False)]
    return "$" + _join(above) + ("/" + _join(below) if below else "") + "$"


def axis_label(symbol: str, units: str | None) -> str:
    """``symbol (units)``, or ``symbol`` alone for dimensionless quantities."""
    unit = unit_label(units)
    return f"{symbol} ({unit})" if unit else symbol


def _units(da) -> str:
    """The unit to show: ``units_label`` of a ratio in model units (units "1"), else ``units``."""
    return da.attrs.get("units_label") or da.attrs.get("units", "")


def _fmt(value: float, digits: int = 2) -> str:
    """A number for a label: 0.1 -> '0.10', 2 -> '2.00', -0 -> '0.00'."""
    value = float(value)
    return f"{value + 0.0:.{digits}f}"


@contextmanager
def _styled(style):
    with plt.style.context(str(style or STYLE)):
        yield


def _atomic_savefig(fig, path: Path, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, **kwargs)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_figure(fig, prefix: str | Path, dpi: int = 300) -> tuple[Path, Path]:
    """Write ``fig`` to ``<prefix>.pdf`` and ``<prefix>.png`` with reproducible bytes; close it."""
    prefix = Path(prefix)
    pdf, png = Path(f"{prefix}.pdf"), Path(f"{prefix}.png")
    try:
        _atomic_savefig(fig, pdf, format="pdf", dpi=dpi,
                        metadata={"CreationDate": None, "ModDate": None})
        fig.set_layout_engine("none")  # the layout the PDF found holds: not computed twice
        _atomic_savefig(fig, png, format="png", dpi=dpi, metadata={"Software": None})
    finally:
        plt.close(fig)
    return pdf, png


def _render(draw, ds, prefix, dpi, style):
    with _styled(style):
        fig = draw(ds)
        save_figure(fig, prefix, dpi)


# --------------------------------------------------------------------------------------------
# Fig. 2: band structure along k_z


def _double_arrow(ax, x, y0, y1, color):
    """A vertical <-> arrow from y0 to y1 at x; a transparent line along it keeps legends off it."""
    ax.annotate("", xy=(x, y1), xytext=(x, y0),
                arrowprops=dict(arrowstyle="<|-|>", lw=0.6, color=color, mutation_scale=5,
                                shrinkA=0, shrinkB=0))
    ax.plot([x, x], [y0, y1], alpha=0.0, lw=4.0)


def draw_band_structure(ds: xr.Dataset):
    """Fig. 2: ε_m(k_z) per valley (one panel each) with Δ_i, band extrema, indirect and global gaps.

    The bottom panel zooms on the global gap, which is small (0.1Δ for Fig. 4's parameters).
    """
    valleys = ds["valley"].values
    n_val = len(valleys)
    kz = ds["kz"]
    energy = ds["energy"]
    e_units = _units(energy)
    ev = unit_label(e_units)
    iv = int(ds.attrs.get("valence_band", ds["band"].attrs.get("valence_band", 0)))
    ic = int(ds.attrs.get("conduction_band", ds["band"].attrs.get("conduction_band", 1)))
    colors = [f"C{i}" for i in range(n_val)]

    fig = plt.figure(figsize=(3.4, 3.9))
    grid = fig.add_gridspec(2, n_val, height_ratios=[2.1, 1.0])
    axes = [fig.add_subplot(grid[0, 0])]
    axes += [fig.add_subplot(grid[0, j], sharey=axes[0]) for j in range(1, n_val)]
    zoom = fig.add_subplot(grid[1, :])

    # energy window of the top panels: all extrema and both band edges at k_z = 0, with margin
    e_at_zero = xr.apply_ufunc(np.interp, 0.0, kz, energy, input_core_dims=[[], ["kz"], ["kz"]],
                               vectorize=True)  # linear, as xarray's interp (no SciPy import)
    span = float(max(abs(e_at_zero).max(), abs(ds["valence_max"]).max(), abs(ds["conduction_min"]).max()))
    e_lim = 1.6 * span
    kz_lim = (float(kz.min()), float(kz.max()))

    for j, (ax, val) in enumerate(zip(axes, valleys)):
        sel = ds.sel(valley=val)
        c = colors[j]
        for b in ds["band"].values:
            ax.plot(kz, sel["energy"].sel(band=b), color=c,
                    lw=1.2 if b in (iv, ic) else 0.7)
        ecz, evz = float(e_at_zero.sel(valley=val, band=ic)), float(e_at_zero.sel(valley=val, band=iv))
        cmin, vmax = float(sel["conduction_min"]), float(sel["valence_max"])
        kc, kv = float(sel["kz_conduction_min"]), float(sel["kz_valence_max"])
        # 2Δ_i at k_z = 0
        _double_arrow(ax, 0.0, evz, ecz, _INK)
        ax.annotate(rf"$2\Delta_{{{val}}}$", xy=(0, evz + 0.62 * (ecz - evz)), xytext=(-2, 0),
                    textcoords="offset points", ha="right", va="center", fontsize=7, color=_INK)
        # band extrema (conduction minimum filled, valence maximum open), guides to the k_z axis
        # labelled with the extremum's k_z
        for k, e in ((kc, cmin), (kv, vmax)):
            ax.plot([k, k], [-e_lim, e], color=c, lw=0.5, ls=":")
            ax.annotate(rf"$k_z = {_fmt(k)}$", xy=(k, -e_lim), xytext=(-1.0, 2),
                        textcoords="offset points", ha="right", va="bottom", rotation=90,
                        fontsize=6, color=c)
        ax.plot([kc], [cmin], "o", color=c, ms=3.5, zorder=5)
        ax.plot([kv], [vmax], "o", mfc="white", mec=c, mew=0.9, ms=3.5, zorder=5)
        # indirect gap: the two edge levels, and an arrow between them where it is tall enough to
        # read (a gap too small to see here is shown in the zoom panel)
        for e in (cmin, vmax):
            ax.axhline(e, color=c, lw=0.5, ls="--", dashes=(3, 2))
        gap_label = rf"$E_{{g,{val}}} = {_fmt(sel['indirect_gap'])}\,${ev}"
        if abs(cmin - vmax) > 0.12 * 2 * e_lim:
            x_arrow = kz_lim[1] - 0.07 * (kz_lim[1] - kz_lim[0])
            _double_arrow(ax, x_arrow, vmax, cmin, c)
            ax.annotate(gap_label, xy=(x_arrow, 0.5 * (cmin + vmax)), xytext=(-2, 0),
                        textcoords="offset points", ha="right", va="center", rotation=90,
                        fontsize=6.5, color=c)
        else:
            ax.annotate(gap_label, xy=(kz_lim[1], max(cmin, vmax)), xytext=(-2, 2),
                        textcoords="offset points", ha="right", va="bottom", fontsize=6.5,
                        color=c)
        ax.set_title(rf"({'abcdefgh'[j]}) valley {val}: $\Delta_{{{val}}} = {_fmt(sel['delta'])}\,${ev}", pad=3)
        ax.set_xlim(*kz_lim)
        ax.set_xlabel(axis_label(r"$k_z$", _units(kz)))
        if j:
            plt.setp(ax.get_yticklabels(), visible=False)
    axes[0].set_ylim(-e_lim, e_lim)
    axes[0].set_ylabel(axis_label(r"$\varepsilon_\pm(0, 0, k_z)$", e_units))

    # zoom on the global gap: every valley's bands, edges and the gap
    gc, gv = float(ds["global_conduction_min"]), float(ds["global_valence_max"])
    gap = float(ds["global_gap"])
    pad = max(4.0 * abs(gap), 0.1 * span)
    for j, val in enumerate(valleys):
        sel = ds.sel(valley=val)
        for b in ds["band"].values:
            zoom.plot(kz, sel["energy"].sel(band=b), color=colors[j],
                      lw=1.2 if b in (iv, ic) else 0.7)
        zoom.plot([float(sel["kz_conduction_min"])], [float(sel["conduction_min"])], "o",
                  color=colors[j], ms=3.5, zorder=5)
        zoom.plot([float(sel["kz_valence_max"])], [float(sel["valence_max"])], "o", mfc="white",
                  mec=colors[j], mew=0.9, ms=3.5, zorder=5)
    if gap > 0:
        zoom.axhspan(gv, gc, color="0.85", lw=0, zorder=0)
    zoom.annotate("", xy=(0, gc), xytext=(0, gv),
                  arrowprops=dict(arrowstyle="<|-|>", lw=0.6, color=_INK, mutation_scale=5,
                                  shrinkA=0, shrinkB=0))
    zoom.text(0.04 * (kz_lim[1] - kz_lim[0]), 0.5 * (gc + gv),
              rf"global gap ${_fmt(gap)}\,${ev}", ha="left", va="center", fontsize=7,
              color=_INK, bbox=dict(fc="0.85" if gap > 0 else "white", ec="none", pad=0.5))
    zoom.set_xlim(*kz_lim)
    zoom.set_ylim(gv - pad, gc + pad)
    zoom.set_xlabel(axis_label(r"$k_z$", _units(kz)))
    zoom.set_ylabel(axis_label(r"$\varepsilon_\pm$", e_units))

    handles = [Line2D([], [], color=colors[j], lw=1.2, label=f"valley {v}")
               for j, v in enumerate(valleys)]
    handles += [
        Line2D([], [], ls="none", marker="o", color=_GUIDE, ms=3.5, label=r"min. $\varepsilon_+$"),
        Line2D([], [], ls="none", marker="o", mfc="white", mec=_GUIDE, mew=0.9, ms=3.5,
               label=r"max. $\varepsilon_-$"),
        Line2D([], [], color=_GUIDE, lw=0.5, ls="--", dashes=(3, 2), label="indirect gap"),
    ]
    zoom.legend(handles=handles, loc="upper right", fontsize=6, ncol=2, columnspacing=0.8)
    zoom.text(0.02, 0.95, f"({'abcdefgh'[n_val]})", transform=zoom.transAxes,
              ha="left", va="top", fontsize=7)
    return fig


def plot_band_structure(ds: xr.Dataset, prefix: str | Path, dpi: int = 300, *, style=None) -> None:
    """Fig. 2 to ``<prefix>.pdf``/``.png`` from a :func:`~qmdipole.band_structure.band_structure` Dataset."""
    _render(draw_band_structure, ds, prefix, dpi, style)


# --------------------------------------------------------------------------------------------
# Fig. 3: k_x-integrated quantum-metric-dipole field


def draw_qmd_field(ds: xr.Dataset):
    """Fig. 3: streamlines of (∫dk_x G_yxx, ∫dk_x G_zxx) over (k_y, k_z), coloured by magnitude."""
    ky, kz = ds["ky"], ds["kz"]
    gy = ds["G_yxx_kx"].transpose("kz", "ky").values
    gz = ds["G_zxx_kx"].transpose("kz", "ky").values
    mag = ds["magnitude"].transpose("kz", "ky").values
    norm = Normalize(vmin=0.0, vmax=float(np.nanmax(mag)))

    fig, ax = plt.subplots(figsize=(3.4, 2.75))
    stream = ax.streamplot(ky.values, kz.values, gy, gz, color=mag, cmap="viridis", norm=norm,
                           density=1.3, linewidth=0.7, arrowsize=0.6, zorder=2)
    ax.axhline(0.0, color=_GUIDE, lw=0.4, ls="--", dashes=(3, 3), zorder=1)
    ax.set_xlim(float(ky.min()), float(ky.max()))
    ax.set_ylim(float(kz.min()), float(kz.max()))
    ax.set_aspect("equal")
    ax.set_xlabel(axis_label(r"$k_y$", _units(ky)))
    ax.set_ylabel(axis_label(r"$k_z$", _units(kz)))
    cbar = fig.colorbar(stream.lines, ax=ax, pad=0.02, fraction=0.05)
    cbar.set_label(axis_label(r"$|\int dk_x\,(G_{yxx}, G_{zxx})|$", _units(ds["magnitude"])))
    cbar.solids.set_rasterized(False)  # keep the PDF fully vector (matplotlib rasterizes >= 50 colours)
    cbar.solids.set_edgecolor("face")  # no hairline seams between the colour quads in PDF viewers
    where = []
    if "valley" in ds.attrs:
        where.append(f"valley {ds.attrs['valley']}")
    if "band" in ds.attrs:
        where.append(f"{ds.attrs['band']} band")
    if where:
        ax.text(0.03, 0.97, ", ".join(where), transform=ax.transAxes, ha="left", va="top",
                fontsize=7, bbox=dict(fc="white", ec="none", pad=0.8))
    return fig


def plot_qmd_field(ds: xr.Dataset, prefix: str | Path, dpi: int = 300, *, style=None) -> None:
    """Fig. 3 to ``<prefix>.pdf``/``.png`` from a :func:`~qmdipole.qmd_field.qmd_field` Dataset."""
    _render(draw_qmd_field, ds, prefix, dpi, style)


# --------------------------------------------------------------------------------------------
# Fig. 4a: NDD spectrum


def _panel_tag(ax, tag: str) -> None:
    """Panel letter above and left of the axes' upper-left corner, clear of the data and of an
    axis offset text (×10⁻⁸), which starts at the corner."""
    ax.annotate(tag, xy=(0.0, 1.0), xycoords="axes fraction", xytext=(-4, 3),
                textcoords="offset points", ha="right", va="bottom", fontsize=8)


def _sparse(n: int, count: int = 28) -> slice:
    return slice(0, None, max(n // count, 1))


def _state_note(attrs: dict, energy_unit: str) -> str:
    """η, μ, k_B T of a spectrum, each with the (mathtext) energy unit unless it is 0."""
    parts = []
    for key, sym in (("eta", r"\eta"), ("mu", r"\mu"), ("temperature", r"k_B T")):
        if key in attrs:
            value = float(attrs[key]) + 0.0
            parts.append(rf"${sym} = {value:g}$" if value == 0 else rf"${sym} = {value:g}\,${energy_unit}")
    return ", ".join(parts)


def _mark_edges(ax, edges, labels, top: bool):
    for x, lab in zip(edges, labels):
        ax.axvline(x, color=_GUIDE, lw=0.5, ls=":", zorder=0)
        if top:
            ax.annotate(lab, xy=(x, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 2),
                        textcoords="offset points", ha="center", va="bottom", fontsize=6.5)


def draw_ndd_spectrum(ds: xr.Dataset):
    """Fig. 4a: Re Δn, Im Δn (with the Kubo cross-check) and ⟨G⟩ against ω, per valley (if more
    than one) and total; for physical energies also the absorption difference Δα (cm⁻¹) with its
    error band."""
    omega = ds["omega"]
    valleys = ds["valley"].values if "valley" in ds.coords else []
    curves_of = valleys if len(valleys) > 1 else []  # one valley's curve is the total
    lower = [("avg_qmd", r"$\langle G\rangle$")]
    if "delta_alpha" in ds:
        lower.insert(0, ("delta_alpha", r"$\Delta\alpha$"))
    fig, (ax, *below) = plt.subplots(1 + len(lower), 1, sharex=True,
                                     figsize=(3.4, 2.4 + 1.2 * len(lower)),
                                     gridspec_kw={"height_ratios": [1.5] + [1.0] * len(lower)})
    parts = (("re_delta_n", r"Re $\Delta n$", "C0", "o"), ("im_delta_n", r"Im $\Delta n$", "C1", "o"))
    for name, label, color, marker in parts:
        ax.plot(omega, ds[name], color=color, lw=1.2, label=label, zorder=3)
        for j, val in enumerate(curves_of):
            ax.plot(omega, ds[f"{name}_valley"].sel(valley=val), color=color, lw=0.7,
                    ls=_VALLEY_DASHES[j % len(_VALLEY_DASHES)], zorder=2)
        kubo = f"{name}_kubo"
        if kubo in ds:
            sub = _sparse(omega.size)
            ax.plot(omega[sub], ds[kubo][sub], ls="none", marker=marker, ms=2.6, mfc="none",
                    mec="k", mew=0.5, zorder=4)
    ax.axhline(0.0, color=_GUIDE, lw=0.4, zorder=0)
    ax.set_ylabel(axis_label(r"$\Delta n$", _units(ds["re_delta_n"])))

    for axis, (name, symbol) in zip(below, lower):
        axis.plot(omega, ds[name], color="k", lw=1.2, label="total", zorder=3)
        if name == "delta_alpha" and "delta_alpha_error" in ds:
            axis.fill_between(omega, ds[name] - ds["delta_alpha_error"],
                              ds[name] + ds["delta_alpha_error"], color="0.8", lw=0, zorder=1)
        for j, val in enumerate(curves_of):
            axis.plot(omega, ds[f"{name}_valley"].sel(valley=val), color="k", lw=0.7,
                      ls=_VALLEY_DASHES[j % len(_VALLEY_DASHES)], zorder=2)
        axis.axhline(0.0, color=_GUIDE, lw=0.4, zorder=0)
        axis.set_ylabel(axis_label(symbol, _units(ds[name])))
    below[-1].set_xlabel(axis_label(r"$\hbar\omega$", _units(omega)))
    below[-1].set_xlim(float(omega.min()), float(omega.max()))

    if "optical_gap" in ds:
        edges = [float(ds["optical_gap"].sel(valley=v)) for v in valleys]
        labels = [rf"$2\Delta_{{{v}}}$" for v in valleys]
        _mark_edges(ax, edges, labels, top=True)
        for axis in below:
            _mark_edges(axis, edges, labels, top=False)

    handles = [Line2D([], [], color=c, lw=1.2, label=lab) for _, lab, c, _ in parts]
    if any(f"{name}_kubo" in ds for name, *_ in parts):
        handles.append(Line2D([], [], ls="none", marker="o", ms=2.6, mfc="none", mec="k", mew=0.5,
                              label="Kubo, Eq. (11)"))
    handles += [Line2D([], [], color="0.3", lw=0.7, ls=_VALLEY_DASHES[j % len(_VALLEY_DASHES)],
                       label=f"valley {v}") for j, v in enumerate(curves_of)]
    fig.legend(handles=handles, loc="outside upper center", ncol=3, columnspacing=1.0)
    note = _state_note(ds.attrs, unit_label(_units(omega)))
    if note:
        ax.text(0.98, 0.03, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=6.5)
    _panel_tag(ax, "(a)")
    return fig


def plot_ndd_spectrum(ds: xr.Dataset, prefix: str | Path, dpi: int = 300, *, style=None) -> None:
    """Fig. 4a to ``<prefix>.pdf``/``.png`` from ``results/reductions/ndd_spectrum.nc``."""
    _render(draw_ndd_spectrum, ds, prefix, dpi, style)


# --------------------------------------------------------------------------------------------
# Fig. 4b: quadrupolar current


def draw_quadrupolar_current(ds: xr.Dataset):
    """Fig. 4b: γ_xxz(μ) at T = 0, per valley and total, band edges, finite-T totals if present;
    in siemens when the energies are physical (a material), else in e²/(16π²ħ)."""
    mu = ds["mu"]
    si = "_si" if "gamma_xxz_si" in ds and mu.attrs.get("units") not in (None, "", "1") else ""
    valleys = ds["valley"].values if "valley" in ds.coords else []
    fig, ax = plt.subplots(figsize=(3.4, 2.5))

    if "band_edge_conduction" in ds and "band_edge_valence" in ds:
        lo = float(ds["band_edge_valence"].max())
        hi = float(ds["band_edge_conduction"].min())
        if hi > lo:
            ax.axvspan(lo, hi, color="0.88", lw=0, zorder=0)
        for j, val in enumerate(valleys):
            for name in ("band_edge_conduction", "band_edge_valence"):
                ax.axvline(float(ds[name].sel(valley=val)), color=f"C{j}", lw=0.5, ls=":", zorder=1)

    for j, val in enumerate(valleys if len(valleys) > 1 else []):  # one valley's curve is the total
        ax.plot(mu, ds[f"gamma_xxz{si}_valley"].sel(valley=val), color=f"C{j}", lw=0.8,
                ls=_VALLEY_DASHES[j % len(_VALLEY_DASHES)], label=f"valley {val}", zorder=2)
    if "gamma_xxz_temperature" in ds and "temperature" in ds.dims and ds.sizes["temperature"]:
        shades = plt.cm.Greys(np.linspace(0.45, 0.7, ds.sizes["temperature"]))
        for t, shade in zip(ds["temperature"].values, shades):
            ax.plot(mu, ds[f"gamma_xxz_temperature{si}"].sel(temperature=t), color=shade, lw=0.8,
                    label=rf"$k_BT = {float(t):g}\,${unit_label(_units(ds['temperature']))}", zorder=3)
    ax.plot(mu, ds[f"gamma_xxz{si}"], color="k", lw=1.2, label=r"total, $T = 0$", zorder=4)
    ax.axhline(0.0, color=_GUIDE, lw=0.4, zorder=0)
    ax.set_xlim(float(mu.min()), float(mu.max()))
    ax.set_xlabel(axis_label(r"$\mu$", _units(mu)))
    ax.set_ylabel(axis_label(r"$\gamma_{xxz}$", _units(ds[f"gamma_xxz{si}"])))
    handles, labels = ax.get_legend_handles_labels()
    if "band_edge_conduction" in ds:
        handles.append(Line2D([], [], color=_GUIDE, lw=0.5, ls=":"))
        labels.append("band edges")
    fig.legend(handles, labels, loc="outside upper center", ncol=3, columnspacing=1.0)
    _panel_tag(ax, "(b)")
    return fig


def plot_quadrupolar_current(ds: xr.Dataset, prefix: str | Path, dpi: int = 300, *, style=None) -> None:
    """Fig. 4b to ``<prefix>.pdf``/``.png`` from ``results/reductions/quadrupolar_current.nc``."""
    _render(draw_quadrupolar_current, ds, prefix, dpi, style)


# --------------------------------------------------------------------------------------------
# validation: convergence


def draw_convergence(ds: xr.Dataset, dim: str = "n_points", slope: float = -2.0 / 3.0,
                     variables=None):
    """Error against the number of k-points on log-log axes, one line per variable (and slice).

    ``variables`` (default: the data variables with the dimension ``dim`` whose name contains
    "error", or all variables with ``dim`` if none does, so that stored curves such as
    ``gamma_xxz(n_points, mu)`` are not mistaken for errors) are drawn, labelled by their
    ``long_name`` (and the values of their other dimensions); a reference line ∝ N^slope (default
    N^(−2/3): O(h²) in 3-D) runs parallel to the first line, a factor 3 below its first point.
    """
    if dim not in ds.dims:
        raise ValueError(f"the convergence dataset has no dimension {dim!r}")
    if variables is None:
        candidates = [name for name, var in ds.data_vars.items() if dim in var.dims]
        variables = [name for name in candidates if "error" in str(name)] or candidates
    n = ds[dim] if dim in ds.coords else xr.DataArray(np.arange(1, ds.sizes[dim] + 1), dims=dim)
    fig, ax = plt.subplots(figsize=(3.4, 2.6))
    markers = "osD^v<>p"
    anchor = None
    units = set()
    k = 0
    for name in variables:
        var = ds[name]
        units.add(_units(var))
        others = [d for d in var.dims if d != dim]
        stacked = var.stack(_case=others) if others else var.expand_dims(_case=[None])
        for case in range(stacked.sizes["_case"]):
            line = stacked.isel(_case=case)
            y = np.abs(line.transpose(dim).values)
            label = var.attrs.get("long_name", name)
            if others:
                label += " (" + ", ".join(f"{d} = {line[d].item()}" for d in others) + ")"
            good = np.isfinite(y) & (y > 0)
            ax.loglog(n.values[good], y[good], marker=markers[k % len(markers)], ms=3, lw=0.9,
                      color=f"C{k % 8}", label=label)
            if anchor is None and good.any():
                i0 = int(np.flatnonzero(good)[0])
                anchor = (float(n.values[i0]), float(y[i0]) / 3.0)
            k += 1
    if anchor is not None:
        ref = np.geomspace(float(n.min()), float(n.max()), 50)
        ax.loglog(ref, anchor[1] * (ref / anchor[0]) ** slope, color=_GUIDE, lw=0.8, ls="--",
                  label=rf"$\propto N^{{{slope:.3g}}}$" if slope != -2 / 3 else r"$\propto N^{-2/3}$")
    ax.set_xlabel(axis_label(r"number of $k$-points $N$", ""))
    unit = units.pop() if len(units) == 1 else ""
    ax.set_ylabel(axis_label("error", unit))
    ax.legend(loc="best")
    return fig


def plot_convergence(ds: xr.Dataset, prefix: str | Path, dpi: int = 300, *, style=None,
                     variables=None) -> None:
    """Validation figure (error vs number of k-points) to ``<prefix>.pdf``/``.png``.

    ``variables``: the error variables to draw (default: see :func:`draw_convergence`).
    """
    _render(lambda data: draw_convergence(data, variables=variables), ds, prefix, dpi, style)


# --------------------------------------------------------------------------------------------
# sweeps: derived features against the swept parameter


def _sweep_lines(ds: xr.Dataset, var: str):
    """(x, y, label) per line of ``ds[var]`` against the sweep's first key; the other swept
    dims (and ``valley``) make one line each."""
    key = ds.attrs["swept_keys"].split(", ")[0].replace(".", "_")
    along = "point" if "point" in ds[key].dims else key
    da = ds[var]
    others = [d for d in da.dims if d != along]
    stacked = da.stack(_line=others) if others else da.expand_dims(_line=[None])
    for i in range(stacked.sizes["_line"]):
        line = stacked.isel(_line=i)
        label = ", ".join(f"{d} = {line[d].item():g}" if d != "valley" else f"valley {line[d].item()}"
                          for d in others)
        yield ds[key].values, line.transpose(along).values, label


def draw_sweep_features(ds: xr.Dataset):
    """A sweep's features against its first swept key: (a) the edge peak of Im Δn per valley,
    (b) the edge slope A of ⟨G⟩ ≈ A√(ω/ω_gap − 1) per valley, (c) the T = 0 extremum of γ_xxz;
    the closed forms of Eq. 14 (``*_law``, where finite) dashed in the same colour."""
    key = ds.attrs["swept_keys"].split(", ")[0]
    xvar = ds[key.replace(".", "_")]
    fig, axes = plt.subplots(3, 1, figsize=(3.4, 5.6), sharex=True)
    panels = (("im_delta_n_peak", r"Im $\Delta n$ edge peak"),
              ("avg_qmd_edge_slope", r"$\langle G\rangle$ edge slope $A$"),
              ("gamma_extremum", r"$\gamma_{xxz}$ extremum"))
    for ax, (var, symbol), tag in zip(axes, panels, "abc"):
        for k, (x, y, label) in enumerate(_sweep_lines(ds, var)):
            order = np.argsort(x)
            ax.plot(x[order], y[order], marker="o", ms=3, lw=0.9, color=f"C{k % 8}", label=label)
        if f"{var}_law" in ds:
            for k, (x, y, _) in enumerate(_sweep_lines(ds, f"{var}_law")):
                order = np.argsort(x)
                if np.isfinite(y).any():
                    ax.plot(x[order], y[order], ls="--", lw=0.8, color=f"C{k % 8}")
        ax.axhline(0.0, color=_GUIDE, lw=0.4, zorder=0)
        ax.set_ylabel(axis_label(symbol, _units(ds[var])))
        _panel_tag(ax, f"({tag})")
    handles, labels = axes[0].get_legend_handles_labels()
    if any(f"{v}_law" in ds and np.isfinite(ds[f"{v}_law"].values).any() for v, _ in panels):
        handles.append(Line2D([], [], color=_GUIDE, lw=0.8, ls="--"))
        labels.append("closed form (Eq. 14)")
    if handles:
        fig.legend(handles, labels, loc="outside upper center", ncol=2, columnspacing=1.0)
    axes[-1].set_xlabel(axis_label(key, _units(xvar)))
    return fig


def plot_sweep_features(ds: xr.Dataset, prefix: str | Path, dpi: int = 300, *, style=None) -> None:
    """A sweep's features to ``<prefix>.pdf``/``.png`` from ``results/sweeps/{name}/sweep.nc``."""
    _render(draw_sweep_features, ds, prefix, dpi, style)
