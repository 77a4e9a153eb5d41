"""Thread settings reach OpenBLAS whichever of NumPy and minivgg is imported first (threads.py).
Speed itself is measured in benchmarks/bench_import_order.py, not here."""

import os
import subprocess
import sys

import pytest

from minivgg.threads import loaded_openblas

# After the imports: the timeout OpenBLAS holds (openblas_thread_timeout() returns what it read
# from the environment), and a product computed by its restarted threads.
CODE = """
import ctypes, sys
{imports}
from minivgg.threads import loaded_openblas
a = numpy.arange(300 * 300, dtype=numpy.float64).reshape(300, 300) % 7
assert numpy.array_equal(a @ a, numpy.einsum("ij,jk->ik", a, a))
libs = [ctypes.CDLL(p) for p in loaded_openblas()]
print(max(lib.openblas_thread_timeout() for lib in libs if hasattr(lib, "openblas_thread_timeout")))
"""

ORDERS = {"numpy first": "import numpy\nnumpy.ones((300, 300)) @ numpy.ones((300, 300))\n"
                         "import minivgg",
          "minivgg first": "import minivgg\nimport numpy"}


def openblas_timeout(imports, **env):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"} | env
    result = subprocess.run([sys.executable, "-c", CODE.format(imports=imports)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


needs_openblas = pytest.mark.skipif(not loaded_openblas(),
                                    reason="NumPy does not use a (Linux) OpenBLAS here")


@needs_openblas
@pytest.mark.parametrize("order", ORDERS)
def test_openblas_gets_the_short_timeout_whatever_the_import_order(order):
    assert openblas_timeout(ORDERS[order]) == 4


@needs_openblas
def test_a_users_own_setting_wins():
    assert openblas_timeout(ORDERS["numpy first"], OPENBLAS_THREAD_TIMEOUT="12") == 12
