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

from .adapters import from_pythtb, from_tbmodels
from .api import (bands, compute, dipole_field, load_wannier90, models_from_config, ndd_spectrum,
                  plot, quadrupolar_current)
from .models import LatticeValleyModel, Model, PythonModel, TwoBandModel, ValleyModel
from .settings import (BandSettings, FieldSettings, GammaSettings, GridSettings, NDDSettings,
                       Sampling, Settings)
from .wannier90 import Wannier90Model

__all__ = [
    "__version__",
    "quadrupolar_current", "ndd_spectrum", "bands", "dipole_field", "plot", "compute",
    "models_from_config", "load_wannier90", "from_pythtb", "from_tbmodels",
    "Model", "TwoBandModel", "ValleyModel", "LatticeValleyModel", "PythonModel", "Wannier90Model",
    "Settings", "GridSettings", "GammaSettings", "NDDSettings", "BandSettings", "FieldSettings",
    "Sampling",
]
