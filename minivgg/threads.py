"""Keep idle BLAS and OpenMP threads from stealing the cores, whichever was imported first.

On a 2-core machine idle worker threads keep spinning after each call and steal the cores from
whatever runs next: OpenBLAS's for ~0.1 s after every matrix product, OpenMP's (PyTorch, Numba
``parallel=True`` code) likewise. minivgg's own kernels run on plain Python threads that sleep when
idle (kernels/jit.py), but they run right after BLAS products: a conv step measured 1.2-1.45x
slower with both left at the libraries' defaults (benchmarks/bench_threads.py).

The libraries read ``OPENBLAS_THREAD_TIMEOUT`` and ``GOMP_SPINCOUNT`` when they load, so setting
them works only for what loads after minivgg. Nearly every script imports NumPy first, and its
OpenBLAS has then read its settings already (its steps measured 1.3-1.5x slower than minivgg-first
ones). So :func:`configure` also makes an already loaded OpenBLAS read its environment again and
stop its worker threads; its next product starts new ones with the short timeout. Both functions
it calls are exported by OpenBLAS (``openblas_read_env``, ``blas_thread_shutdown_``, the one it
uses itself after a fork); a library without them is left alone. A user's own settings win.
This runs once, when minivgg is imported: don't import it while another thread is inside a BLAS
call.
Measured by benchmarks/bench_import_order.py.
"""

import contextlib
import ctypes
import os

SETTINGS = {"OPENBLAS_THREAD_TIMEOUT": "4", "GOMP_SPINCOUNT": "30000"}


def loaded_openblas():
    """Paths of the OpenBLAS libraries loaded in this process (read from /proc/self/maps, so
    Linux only; elsewhere an empty list)."""
    try:
        with open("/proc/self/maps") as maps:
            fields = [line.split(maxsplit=5) for line in maps]
    except OSError:
        return []
    return sorted({f[5].strip() for f in fields if len(f) == 6 and "openblas" in f[5].lower()})


def configure():
    """Set the thread settings the user has not set, and apply them to a loaded OpenBLAS."""
    restart = "OPENBLAS_THREAD_TIMEOUT" not in os.environ
    for name, value in SETTINGS.items():
        os.environ.setdefault(name, value)
    if not restart:
        return
    for path in loaded_openblas():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(library, "openblas_read_env") and hasattr(library, "blas_thread_shutdown_"):
            library.openblas_read_env()
            library.blas_thread_shutdown_()


@contextlib.contextmanager
def one_blas_thread_children():
    """While inside, processes started from here (``multiprocessing``'s "spawn") get one BLAS
    and OpenMP thread each, read when their NumPy starts; this process's settings are put back
    afterwards. For worker pools that give each worker one core."""
    saved = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    os.environ.update({k: "1" for k in saved})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
