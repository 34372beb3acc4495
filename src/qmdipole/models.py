"""Band models: H(k) and its k-gradient for batches of k-points.

Conventions (docs/conventions.md): ħ = 1, energies in units of Δ ≡ Δ₁, momenta in units fixed by the
model's own velocity ``v`` (the reported responses do not depend on that choice).

Every model answers two calls for arrays ``kx, ky, kz`` of one common shape ``S``:

* ``hamiltonian(kx, ky, kz)`` -> complex array ``S + (n_bands, n_bands)``
* ``hamiltonian_gradient(kx, ky, kz)`` -> complex array ``(3,) + S + (n_bands, n_bands)``, ∂H/∂k_i

and may answer both at once, ``hamiltonian_and_gradient(kx, ky, kz)`` (:class:`Model` gives the
two calls; Wannier90 models share the Bloch phases), and the derivative along one direction,
``hamiltonian_derivative(kx, ky, kz, direction)`` (:class:`Model` projects the gradient; two-band
models form it directly).

Two-band models H = e₀(k) + d(k)·σ (:class:`TwoBandModel`) also expose the d-vector and its
gradient, which :mod:`qmdipole.geometry` uses for its closed-form path.

``kind: python`` in the config loads a user's model: ``factory: "package.module:function"`` is
called with ``options`` (a dict) merged with the valley entry, and must return an object with the
two calls above and an ``n_bands`` attribute (subclassing :class:`Model` or :class:`TwoBandModel`
is the easy way). See ``examples/user_model.py``.

``kind: wannier90`` reads a Wannier90 tight-binding model (:mod:`qmdipole.wannier90`) from
``hr_file``; the whole model is one component (the pipeline's single "valley").
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
from numba import njit

from . import analytic
from .band_pairs import along


PAULI = np.array(
    [[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=complex
)


class ModelError(ValueError):
    """A model could not be built or behaves badly (not Hermitian, wrong shapes, ...)."""


class TransitionTail(NamedTuple):
    """Transitions x ≥ ``start`` of an insulating model whose ⟨G⟩(x) (Eq. 13) is known in closed form.

    Every state with transition energy x ≥ ``start`` has f_v − f_c = 1 and no Fermi surface, so its
    part of Δn is −8π ∫ dx x ⟨G⟩(x)/(x² − z²)² (α). ``avg_qmd`` maps an array of x to ⟨G⟩(x);
    ``end`` (> start) is where the k-grid's share of the transitions has tapered to zero.
    """

    start: float
    end: float
    avg_qmd: Callable


class Model:
    """Base class of a band model: subclasses define the Hamiltonian and its gradient."""

    n_bands: int = 2
    name: str = "model"

    def hamiltonian(self, kx, ky, kz) -> np.ndarray:
        raise NotImplementedError

    def hamiltonian_gradient(self, kx, ky, kz) -> np.ndarray:
        raise NotImplementedError

    def hamiltonian_and_gradient(self, kx, ky, kz) -> tuple[np.ndarray, np.ndarray]:
        """Both calls at once; models that share work between them (Bloch phases) override it."""
        return self.hamiltonian(kx, ky, kz), self.hamiltonian_gradient(kx, ky, kz)

    def hamiltonian_derivative(self, kx, ky, kz, direction) -> np.ndarray:
        """d·∂H/∂k = Σ_i d_i ∂H/∂k_i, ``S + (n_bands, n_bands)``, along one Cartesian direction
        ``d`` (3,) (the NDD's vertex ê·∂H); models that form it without the whole gradient
        override it."""
        return along(self.hamiltonian_gradient(kx, ky, kz), np.asarray(direction, float))

    def k_window(self, energy_range: tuple[float, float], transition_max: float):
        """Cylinder ``(rho_max, kz_min, kz_max)`` holding every state the reductions need.

        Models that cannot answer return ``None``; the k-grid then needs an explicit window.
        """
        return None

    def transition_tail(self, *, mu: float, temperature: float, omega_max: float,
                        eta: float) -> TransitionTail | None:
        """The high-energy transitions of Δn in closed form, or ``None`` (the default: none known).

        Models with unbounded transition energies (continuum models) answer this so that Δn is
        the model's converged limit rather than that of a transition cut-off.
        """
        return None

    def describe(self) -> dict:
        """Parameters recorded in the provenance of every output (a dataclass's fields)."""
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {"name": self.name}


class TwoBandModel(Model):
    """H = e₀(k) 𝟙 + d(k)·σ; subclasses define :meth:`d_vector` and :meth:`d_gradient`."""

    n_bands = 2

    def d_vector(self, kx, ky, kz) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(e0, d)`` with shapes ``S`` and ``(3,) + S``."""
        raise NotImplementedError

    def d_gradient(self, kx, ky, kz) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(grad_e0, grad_d)`` with shapes ``(3,) + S`` and ``(3, 3) + S``.

        ``grad_d[i, a] = ∂d_a/∂k_i``.
        """
        raise NotImplementedError

    def hamiltonian(self, kx, ky, kz) -> np.ndarray:
        return _pauli_matrix(*self.d_vector(kx, ky, kz))

    def hamiltonian_gradient(self, kx, ky, kz) -> np.ndarray:
        grad_e0, grad_d = self.d_gradient(kx, ky, kz)
        return _pauli_matrix(grad_e0, np.moveaxis(grad_d, 1, 0))

    def hamiltonian_derivative(self, kx, ky, kz, direction) -> np.ndarray:
        """d·∂e₀ + (d·∂d)·σ: one matrix per k-point instead of three (sums over the non-zero
        components of d, :func:`~qmdipole.band_pairs.along`)."""
        grad_e0, grad_d = self.d_gradient(kx, ky, kz)
        d = np.asarray(direction, float)
        return _pauli_matrix(along(grad_e0, d), along(grad_d, d))


def _pauli_matrix(scalar, vector):
    """scalar·𝟙 + Σ_a vector[a]·σ_a as complex matrices in two new last axes (compiled)."""
    parts = [np.asarray(part, float) for part in (scalar, *vector)]
    shape = np.broadcast_shapes(*(part.shape for part in parts))
    out = np.empty(shape + (2, 2), complex)
    _fill_pauli(*(part.ravel() if part.shape == shape else np.broadcast_to(part, shape).ravel()
                  for part in parts), out.reshape(-1, 2, 2))
    return out


@njit(cache=True, nogil=True)
def _fill_pauli(scalar, x, y, z, out):
    """out[i] = scalar[i]·𝟙 + x[i] σ_x + y[i] σ_y + z[i] σ_z, one pass."""
    for i in range(scalar.size):
        out[i, 0, 0] = scalar[i] + z[i]
        out[i, 1, 1] = scalar[i] - z[i]
        out[i, 0, 1] = complex(x[i], -y[i])
        out[i, 1, 0] = complex(x[i], y[i])


@dataclass
class ValleyModel(TwoBandModel):
    """One valley of Eq. (14): H = v' k_z + v τ k_x σ_x + v k_y σ_y + (Δ + k_z²/2m) σ_z."""

    delta: float
    vprime: float
    tau: int = 1
    v: float = 1.0
    mass: float = 1.0
    name: str = field(default="valley", init=False)

    def __post_init__(self):
        _check_positive(mass=self.mass, v=self.v)
        if self.tau not in (1, -1):
            raise ModelError(f"model.valleys[].tau must be +1 or -1, got {self.tau!r}")

    def d_vector(self, kx, ky, kz):
        kx, ky, kz = np.broadcast_arrays(*map(np.asarray, (kx, ky, kz)))
        d = np.stack(
            [self.v * self.tau * kx, self.v * ky, self.delta + kz**2 / (2 * self.mass)]
        )
        return self.vprime * kz, d

    def d_gradient(self, kx, ky, kz):
        kx, ky, kz = np.broadcast_arrays(*map(np.asarray, (kx, ky, kz)))
        zero, one = np.zeros(kx.shape), np.ones(kx.shape)
        grad_e0 = np.stack([zero, zero, self.vprime * one])
        grad_d = np.zeros((3, 3) + kx.shape)
        grad_d[0, 0] = self.v * self.tau
        grad_d[1, 1] = self.v
        grad_d[2, 2] = kz / self.mass
        return grad_e0, grad_d

    def k_window(self, energy_range, transition_max):
        """Cylinder containing all states with ε± in ``energy_range`` or 2|d| ≤ ``transition_max``.

        With E = |d| ≥ |d_z(k_z)|, a state at k_z is needed when E ≤ E*(k_z) =
        max(μ_max − v'k_z, v'k_z − μ_min, transition_max/2). Each branch b(k_z) of E* is linear,
        so b ≥ d_z is a quadratic inequality solved exactly; the union of those intervals bounds
        k_z (|d_z| ≥ d_z makes it a superset when Δ < 0). ρ_max maximises √(E*² − d_z²)/v on it.
        """
        e_lo, e_hi = energy_range
        branches = ((e_hi, -self.vprime), (-e_lo, self.vprime), (transition_max / 2, 0.0))
        ends = []
        for a0, a1 in branches:  # k²/2m − a1 k + (Δ − a0) ≤ 0
            a, b, c = 1 / (2 * self.mass), -a1, self.delta - a0
            disc = b * b - 4 * a * c
            if disc >= 0:
                ends += [(-b - np.sqrt(disc)) / (2 * a), (-b + np.sqrt(disc)) / (2 * a)]
        if not ends:
            return 0.0, 0.0, 0.0
        kz_min, kz_max = min(ends), max(ends)
        kz = np.linspace(kz_min, kz_max, 20001)
        d_z = self.delta + kz**2 / (2 * self.mass)
        e_star = np.max([a0 + a1 * kz for a0, a1 in branches], axis=0)
        room = e_star**2 - d_z**2
        rho_max = np.sqrt(room.max()) / self.v if (room > 0).any() else 0.0
        return float(rho_max), float(kz_min), float(kz_max)

    def transition_tail(self, *, mu, temperature, omega_max, eta):
        """Transitions x ≥ start in closed form (⟨G⟩ of the insulator, ``analytic.avg_qmd_insulator``).

        States with x = 2E have |k_z| ≤ K(E) = √(2m(E − Δ)), so |ε± − μ| ≥ E − |v'|K(E) − |μ|.
        With s = √(E − Δ), E − |v'|√(2m) s ≥ c is s² − bs + Δ − c ≥ 0 (b = |v'|√(2m)), true for
        every s ≥ s₊ = (b + √(b² − 4(Δ − c)))/2. Taking c = |μ| + 40 k_BT + Δ/2 (Fermi factors
        below e⁻⁴⁰, and a margin), every transition x ≥ 2(Δ + s₊²) has f_v − f_c = 1 and no
        Fermi surface. ``start`` is also ≥ ω_max + 20η, so that the k-grid holds every resonance
        x ≈ ω of the spectrum; ``end`` = 1.5·start. ``None`` for Δ ≤ 0 (the closed form assumes
        d_z > 0).
        """
        if not self.delta > 0:
            return None
        b = abs(self.vprime) * math.sqrt(2 * self.mass)
        c = abs(mu) + 40 * temperature + 0.5 * self.delta
        disc = b * b - 4 * (self.delta - c)
        s_plus = 0.5 * (b + math.sqrt(disc)) if disc > 0 else 0.0
        start = max(2 * (self.delta + s_plus**2), omega_max + 20 * eta)
        gbar = functools.partial(analytic.avg_qmd_insulator, delta=self.delta,
                                 vprime=self.vprime, mass=self.mass, v=self.v)
        return TransitionTail(start, 1.5 * start, gbar)



@dataclass
class LatticeValleyModel(TwoBandModel):
    """Cubic-lattice regularisation of Eq. (14) on the Brillouin zone [-π/a, π/a)³.

    H = v' sin(k_z a)/a + v τ sin(k_x a)/a σ_x + v sin(k_y a)/a σ_y
        + (Δ + (1 − cos k_z a)/(m a²)) σ_z,
    i.e. k → sin(k a)/a and k_z²/2 → (1 − cos k_z a)/a²; it reduces to Eq. (14) as a → 0.
    """

    delta: float
    vprime: float
    tau: int = 1
    v: float = 1.0
    mass: float = 1.0
    lattice_constant: float = 1.0
    name: str = field(default="lattice", init=False)

    def __post_init__(self):
        _check_positive(mass=self.mass, v=self.v, lattice_constant=self.lattice_constant)
        if self.tau not in (1, -1):
            raise ModelError(f"model.valleys[].tau must be +1 or -1, got {self.tau!r}")

    def d_vector(self, kx, ky, kz):
        kx, ky, kz = np.broadcast_arrays(*map(np.asarray, (kx, ky, kz)))
        a, m = self.lattice_constant, self.mass
        d = np.stack(
            [
                self.v * self.tau * np.sin(kx * a) / a,
                self.v * np.sin(ky * a) / a,
                self.delta + (1 - np.cos(kz * a)) / (m * a * a),
            ]
        )
        return self.vprime * np.sin(kz * a) / a, d

    def d_gradient(self, kx, ky, kz):
        kx, ky, kz = np.broadcast_arrays(*map(np.asarray, (kx, ky, kz)))
        a, m = self.lattice_constant, self.mass
        zero = np.zeros(kx.shape)
        grad_e0 = np.stack([zero, zero, self.vprime * np.cos(kz * a)])
        grad_d = np.zeros((3, 3) + kx.shape)
        grad_d[0, 0] = self.v * self.tau * np.cos(kx * a)
        grad_d[1, 1] = self.v * np.cos(ky * a)
        grad_d[2, 2] = np.sin(kz * a) / (m * a)
        return grad_e0, grad_d


# Central differences of fourth order: H'(k) ≈ Σ_j c_j H(k + s_j h e_i) / h.
_STENCIL = ((-2.0, 1 / 12), (-1.0, -2 / 3), (1.0, 2 / 3), (2.0, -1 / 12))


def finite_difference_gradient(hamiltonian: Callable, kx, ky, kz, step: float = 1e-3) -> np.ndarray:
    """∂H/∂k_i of a bare ``hamiltonian(kx, ky, kz)`` by the five-point central difference.

    ∂_i H(k) ≈ [H(k − 2h e_i) − 8 H(k − h e_i) + 8 H(k + h e_i) − H(k + 2h e_i)] / (12 h),
    h = ``step`` (units of k). The error is h⁴ |∂⁵_i H| / 30 (truncation) plus about
    1.5 ε |H| / h (round-off, ε = 2.2·10⁻¹⁶): with the default h = 10⁻³ and H varying on a scale
    of order 1 in k, about 10⁻¹² relative to |H| (exact for H at most quartic in k). Shape
    ``(3,) + S + (n, n)``; 12 evaluations of H.
    """
    k = [np.asarray(c, float) for c in np.broadcast_arrays(kx, ky, kz)]
    out = []
    for i in range(3):
        total = 0.0
        for shift, weight in _STENCIL:
            moved = [c + shift * step if a == i else c for a, c in enumerate(k)]
            total = total + weight * np.asarray(hamiltonian(*moved), complex)
        out.append(total / step)
    return np.stack(out)


class PythonModel(Model):
    """A model from a Python function ``hamiltonian(kx, ky, kz)`` -> ``S + (n_bands, n_bands)``.

    ``gradient(kx, ky, kz)`` -> ``(3,) + S + (n_bands, n_bands)`` is ∂H/∂k_i; without it
    :func:`finite_difference_gradient` (error ~10⁻¹² relative, see there) with ``step`` is used.
    ``n_bands`` defaults to the size of H(0). ``parameters`` are recorded by :meth:`describe`.
    """

    def __init__(self, hamiltonian: Callable, gradient: Callable | None = None, *,
                 n_bands: int | None = None, name: str = "python", step: float = 1e-3,
                 parameters: dict | None = None):
        if not callable(hamiltonian) or not (gradient is None or callable(gradient)):
            raise ModelError("PythonModel needs a callable hamiltonian(kx, ky, kz) and a callable "
                             "gradient or None")
        if not step > 0:
            raise ModelError(f"PythonModel step must be > 0, got {step!r}")
        self._hamiltonian, self._gradient, self.step = hamiltonian, gradient, float(step)
        self.name, self.parameters = name, dict(parameters or {})
        size = np.shape(hamiltonian(np.zeros(1), np.zeros(1), np.zeros(1)))[-1]
        self.n_bands = int(size if n_bands is None else n_bands)

    def hamiltonian(self, kx, ky, kz) -> np.ndarray:
        return np.asarray(self._hamiltonian(kx, ky, kz), complex)

    def hamiltonian_gradient(self, kx, ky, kz) -> np.ndarray:
        if self._gradient is None:
            return finite_difference_gradient(self._hamiltonian, kx, ky, kz, self.step)
        return np.asarray(self._gradient(kx, ky, kz), complex)

    def describe(self) -> dict:
        return {"name": self.name, "n_bands": self.n_bands, "parameters": self.parameters,
                "gradient": "given" if self._gradient is not None else
                f"finite_difference (five-point, step {self.step:g})"}


def _check_positive(**values):
    for key, value in values.items():
        if not value > 0:
            raise ModelError(f"model.{key} must be > 0, got {value!r}")


def wannier90_files(model_config: dict) -> dict[str, Path]:
    """The files of a ``kind: wannier90`` model, each checked to exist (paths as given, relative
    to the run directory): ``hr_file``; ``centres_file`` (the key, else ``seed_centres.xyz``
    beside the hr file when present); ``wsvec_file`` (``seed_wsvec.dat`` when present);
    ``tb_file`` (``seed_tb.dat``, only read when ``model.lattice_vectors`` is not given)."""
    from .wannier90 import seed_files

    hr_file = model_config.get("hr_file")
    if not hr_file:
        raise ModelError("model.hr_file must name the seedname_hr.dat file for kind: wannier90")
    files = {"hr_file": Path(hr_file)}
    if model_config.get("centres_file"):
        files["centres_file"] = Path(model_config["centres_file"])
    for key, path in files.items():
        if not path.is_file():
            raise ModelError(f"model.{key}: no such file {str(path)!r} (paths are relative to "
                             "the run directory)")
    companions = seed_files(files["hr_file"])
    files = {**{k: v for k, v in companions.items() if k != "tb_file"}, **files}
    if model_config.get("lattice_vectors") is None:
        if "tb_file" not in companions:
            raise ModelError(
                f"model.lattice_vectors is not given and no seedname_tb.dat lies beside "
                f"model.hr_file {str(hr_file)!r}: set model.lattice_vectors (rows a1, a2, a3 in Å)")
        files["tb_file"] = companions["tb_file"]
    return files


def wannier90_digests(model_config: dict) -> dict[str, str]:
    """SHA-256 of each file of a ``kind: wannier90`` model, by its key (where it lies does not
    count): the model changes exactly when one of these does."""
    return {key: hashlib.sha256(path.read_bytes()).hexdigest()
            for key, path in sorted(wannier90_files(model_config).items())}


def components(model_config: dict) -> list[dict]:
    """The ``valleys`` the pipeline runs for ``model_config``: one entry per valley, and a single
    empty entry for ``kind: wannier90`` (the whole model is one component; ``valleys`` unused)."""
    if model_config.get("kind") == "wannier90":
        return [{}]
    return list(model_config.get("valleys") or [])


def valley_parameters(model_config: dict, valley: int) -> dict:
    """The parameters of valley ``valley`` (0-based): the valley entry over the global keys."""
    valleys = model_config.get("valleys") or []
    if not 0 <= valley < len(valleys):
        raise ModelError(f"model.valleys has no entry {valley} (it has {len(valleys)})")
    entry = dict(valleys[valley])
    params = {"v": model_config.get("v", 1.0), "mass": model_config.get("mass", 1.0)}
    params.update(entry)
    return params


def valley_section(model_config: dict, valley: int) -> dict:
    """The ``model:`` section reduced to valley ``valley`` (0-based), as the only valley: what one
    valley's files are made for (their provenance), independent of the other valleys."""
    section = {key: value for key, value in model_config.items() if key != "valleys"}
    return {**section, "valleys": [model_config["valleys"][valley]]}


def build_model(model_config: dict, valley: int) -> Model:
    """The model of one valley from the ``model:`` section of the config."""
    kind = model_config.get("kind", "valley")
    if kind == "wannier90":
        if valley != 0:
            raise ModelError(f"a kind: wannier90 model is one component (valley 0), not {valley}")
        return _wannier90_model(model_config)
    params = valley_parameters(model_config, valley)
    keys = ("delta", "vprime", "tau", "v", "mass")
    if kind == "valley":
        return ValleyModel(**{k: params[k] for k in keys if k in params})
    if kind == "lattice":
        a = model_config.get("lattice_constant", 1.0)
        return LatticeValleyModel(**{k: params[k] for k in keys if k in params}, lattice_constant=a)
    if kind == "python":
        return _import_model(model_config, params)
    raise ModelError(f"model.kind must be one of valley, lattice, python, wannier90; got {kind!r}")


def _wannier90_model(model_config: dict) -> Model:
    from .wannier90 import Wannier90Model

    files = wannier90_files(model_config)
    mp_grid = model_config.get("mp_grid")
    return Wannier90Model.from_files(
        files["hr_file"], files.get("centres_file"), files.get("wsvec_file"),
        lattice_vectors=model_config.get("lattice_vectors"),
        mp_grid=None if mp_grid is None else tuple(mp_grid))


def _import_model(model_config: dict, params: dict) -> Model:
    target = model_config.get("factory")
    if not target or ":" not in str(target):
        raise ModelError(
            f"model.factory must be 'package.module:function' for kind: python, got {target!r}"
        )
    module_name, _, attr = str(target).partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except Exception as err:  # ImportError, AttributeError, or anything the module raises
        raise ModelError(
            f"model.factory {target!r} cannot be imported: {type(err).__name__}: {err}"
        ) from err
    try:
        model = factory(**{**(model_config.get("options") or {}), **params})
    except Exception as err:
        raise ModelError(
            f"model.factory {target!r} failed with model.options and the valley entry "
            f"{sorted(params)}: {type(err).__name__}: {err}"
        ) from err
    for name in ("hamiltonian", "hamiltonian_gradient"):
        if not callable(getattr(model, name, None)):
            raise ModelError(f"model.factory {target!r} returned an object without {name}()")
    if not isinstance(getattr(model, "n_bands", None), int):
        raise ModelError(f"model.factory {target!r} returned an object without an int n_bands")
    return model
