"""qmdipole: band-geometric optical responses from the quantum metric dipole (Gao & Xiao).

Modules, one per concept: :mod:`~qmdipole.models` (H(k), ∂H), :mod:`~qmdipole.kgrid` (k-grids and
weights), :mod:`~qmdipole.geometry` (ε, v, g, Ω per band), :mod:`~qmdipole.tabulate` (Dask → NetCDF),
:mod:`~qmdipole.tetrahedron` (Fermi-surface δ-integrals), :mod:`~qmdipole.quadrupolar` (γ, Eqs. 9–10),
:mod:`~qmdipole.ndd` (⟨G⟩, Δn, Kubo; Eqs. 4, 11–13), :mod:`~qmdipole.analytic` (closed forms for
Eq. 14), :mod:`~qmdipole.figures`, :mod:`~qmdipole.io`.
"""

try:  # written by setuptools-scm when the package is built or installed
    from ._version import __version__
except ImportError:  # a source tree that was never installed
    __version__ = "0+unknown"
