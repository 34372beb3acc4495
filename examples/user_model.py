"""A user's own band model for qmdipole: a tilted, massive 3-D Dirac (two-band) model.

    H(k) = (w · k) 𝟙 + v (k_x σ_x + k_y σ_y) + (Δ + |k|²/(2m)) σ_z

The tilt w breaks inversion, the chirality-free mass term keeps a gap 2Δ at k = 0 for Δ > 0; with
two valleys of opposite tilt (time-reversal partners) the NDD vanishes, with unequal gaps it does not.

qmdipole needs only three things from a model (see ``qmdipole.models``):

* ``n_bands`` — an int;
* ``hamiltonian(kx, ky, kz)`` — complex array ``S + (n_bands, n_bands)`` for k arrays of shape ``S``;
* ``hamiltonian_gradient(kx, ky, kz)`` — complex array ``(3,) + S + (n_bands, n_bands)``, ∂H/∂k_i.

It is selected in the config with ``model.kind: python`` and ``model.factory:
"examples.user_model:tilted_dirac"``; the factory is called once per valley with ``model.options``
merged with that valley's entry (plus ``v`` and ``mass`` from the global keys), so every valley
entry can set its own ``delta``, ``tilt``, ... Run it (from the repository root) with

    snakemake --cores all --configfile examples/user_model.yaml
"""

from __future__ import annotations

import numpy as np

from qmdipole.models import PAULI, Model


class TiltedDirac(Model):
    """H = (w·k) + v (k_x σ_x + k_y σ_y) + (Δ + |k|²/2m) σ_z, energies in Δ₁, ħ = 1."""

    n_bands = 2
    name = "tilted_dirac"

    def __init__(self, delta: float, tilt=(0.0, 0.0, 0.0), v: float = 1.0, mass: float = 1.0):
        if not (v > 0 and mass > 0):
            raise ValueError(f"v and mass must be > 0, got v={v!r}, mass={mass!r}")
        self.delta, self.v, self.mass = float(delta), float(v), float(mass)
        self.tilt = np.asarray(tilt, dtype=float).reshape(3)

    def _d(self, kx, ky, kz):
        """e₀ and the d-vector (d_x, d_y, d_z) of H = e₀ + d·σ."""
        e0 = self.tilt[0] * kx + self.tilt[1] * ky + self.tilt[2] * kz
        d = (self.v * kx, self.v * ky, self.delta + (kx**2 + ky**2 + kz**2) / (2 * self.mass))
        return e0, d

    def hamiltonian(self, kx, ky, kz):
        kx, ky, kz = np.broadcast_arrays(*map(np.asarray, (kx, ky, kz)))
        e0, d = self._d(kx, ky, kz)
        h = e0[..., None, None] * np.eye(2, dtype=complex)
        for component, pauli in zip(d, PAULI):
            h = h + component[..., None, None] * pauli
        return h

    def hamiltonian_gradient(self, kx, ky, kz):
        kx, ky, kz = np.broadcast_arrays(*map(np.asarray, (kx, ky, kz)))
        grad = np.zeros((3,) + kx.shape + (2, 2), dtype=complex)
        for i, k in enumerate((kx, ky, kz)):
            # ∂e₀/∂k_i = w_i; ∂d/∂k_i = (v δ_ix, v δ_iy, k_i/m)
            grad[i] += self.tilt[i] * np.eye(2)
            grad[i] += (k / self.mass)[..., None, None] * PAULI[2]
            if i < 2:
                grad[i] += self.v * PAULI[i]
        return grad

    def describe(self) -> dict:
        return {"name": self.name, "delta": self.delta, "tilt": self.tilt.tolist(),
                "v": self.v, "mass": self.mass}


def tilted_dirac(*, delta: float, tilt=(0.0, 0.0, 0.0), v: float = 1.0, mass: float = 1.0,
                 **unused) -> TiltedDirac:
    """Factory named in the config: one valley's model from its entry (extra keys are ignored)."""
    return TiltedDirac(delta=delta, tilt=tilt, v=v, mass=mass)
