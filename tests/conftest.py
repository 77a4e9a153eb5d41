import numpy as np
import pytest

from minivgg.backend import BACKENDS, use_backend


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test once per kernel backend (naive, numpy, numba)."""
    with use_backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)
