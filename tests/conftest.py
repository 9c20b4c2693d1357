"""Shared fixtures: the NumPy backend is the oracle; compiled ones are compared against it."""
import os

import numpy as np
import pytest

import fusenn as fn


@pytest.fixture
def numpy_backend():
    with fn.use_backend("numpy"):
        yield


def _select(name):
    """Use backend ``name``; skip when unavailable, unless FUSENN_REQUIRE_BACKENDS names it."""
    if name not in fn.available_backends():
        required = os.environ.get("FUSENN_REQUIRE_BACKENDS", "")
        if name in [s.strip() for s in required.split(",")]:
            pytest.fail(f"backend {name} is required but unavailable")
        pytest.skip(f"backend {name} not available")
    return fn.use_backend(name)


@pytest.fixture(params=["numpy", "cython", "numba"])
def any_backend(request):
    """Every backend, selected for the test."""
    with _select(request.param):
        yield request.param


@pytest.fixture(params=["cython", "numba"])
def compiled_backend(request):
    """Every compiled backend, selected for the test."""
    with _select(request.param):
        yield request.param


@pytest.fixture(scope="session")
def digits():
    return fn.datasets.load_digits()
