"""qmdipole: band-geometric optical responses from the quantum metric dipole (Gao & Xiao).

The public API (:mod:`~qmdipole.api`), for notebooks and scripts::

    import qmdipole as qd
    model = qd.ValleyModel(delta=1.0, vprime=1.0, mass=1.9)     # or qd.load_wannier90(...),
    gamma = qd.quadrupolar_current(model, mu=qd.Sampling(-4, 4, 401))  # qd.from_pythtb(...), ...
    qd.plot(gamma)

Modules, one per concept: :mod:`~qmdipole.models` (H(k), ∂H), :mod:`~qmdipole.kgrid` (k-grids and
weights), :mod:`~qmdipole.geometry` (ε, v, g, Ω per band), :mod:`~qmdipole.tabulate` (Dask → NetCDF),
:mod:`~qmdipole.tetrahedron` (Fermi-surface δ-integrals), :mod:`~qmdipole.quadrupolar` (γ, Eqs. 9–10),
:mod:`~qmdipole.ndd` (⟨G⟩, Δn, Kubo; Eqs. 4, 11–13), :mod:`~qmdipole.analytic` (closed forms for
Eq. 14), :mod:`~qmdipole.figures`, :mod:`~qmdipole.io`, :mod:`~qmdipole.settings` (typed settings),
:mod:`~qmdipole.adapters` (PythTB and TBmodels models).
"""

try:  # written by setuptools-scm when the package is built or installed
    from ._version import __version__
except ImportError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "quadrupolar_current", "ndd_spectrum", "ndd_tensor", "bands", "dipole_field", "plot",
    "compute", "models_from_config", "load_wannier90", "from_pythtb", "from_tbmodels",
    "Model", "TwoBandModel", "ValleyModel", "LatticeValleyModel", "PythonModel", "Wannier90Model",
    "Settings", "GridSettings", "GammaSettings", "NDDSettings", "BandSettings", "FieldSettings",
    "Sampling",
]

# Where each public name lives: imported on first use (PEP 562), so that ``import qmdipole.io``
# in a pipeline job does not load the whole API (Dask, the reductions) at start-up.
_EXPORTS = {
    **dict.fromkeys(("quadrupolar_current", "ndd_spectrum", "ndd_tensor", "bands",
                     "dipole_field", "plot", "compute", "models_from_config", "load_wannier90"),
                    "api"),
    **dict.fromkeys(("from_pythtb", "from_tbmodels"), "adapters"),
    **dict.fromkeys(("Model", "TwoBandModel", "ValleyModel", "LatticeValleyModel", "PythonModel"),
                    "models"),
    **dict.fromkeys(("Settings", "GridSettings", "GammaSettings", "NDDSettings", "BandSettings",
                     "FieldSettings", "Sampling"), "settings"),
    "Wannier90Model": "wannier90",
}


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS])
