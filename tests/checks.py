"""Assertions shared by several test modules."""

import numpy as np


def assert_gradient_matches_finite_differences(model, k, h=1e-6, atol=1e-8):
    """∂H/∂k_i of ``model`` at k-points ``k`` (3, N) equals central differences of H."""
    for i in range(3):
        kp, km = k.copy(), k.copy()
        kp[i] += h
        km[i] -= h
        fd = (model.hamiltonian(*kp) - model.hamiltonian(*km)) / (2 * h)
        np.testing.assert_allclose(model.hamiltonian_gradient(*k)[i], fd, atol=atol)
