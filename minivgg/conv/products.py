"""Many independent matrix products, out[k] = a[k] @ b[k]: Winograd's alpha^2 positions, im2col's
per-image products. How they share the cores is the same question for both."""

import numpy as np

_blas = []                             # threadpoolctl's controller, loaded on first use


def _blas_controller():
    """threadpoolctl's view of the BLAS threads, or None without threadpoolctl (optional)."""
    if not _blas:
        try:
            from threadpoolctl import ThreadpoolController
            _blas.append(ThreadpoolController())
        except ImportError:
            _blas.append(None)
    return _blas[0]


def products(a, b, out):
    """out[k] = a[k] @ b[k] for every k: len(a) separate products (a, b, out: 3-D; views and
    broadcast arrays are fine).

    With multi-threaded BLAS every one of them is a point where BLAS's threads wait for each
    other; on a loaded 2-core machine that made VGG-16's 13 convolutions by Winograd 3x slower
    than im2col's 3 products per layer (29.6 s against 9.2 s, while on one thread Winograd took
    0.74 of im2col's time). So when threadpoolctl is installed, BLAS runs single-threaded here and
    the products are shared out between the kernels' threads instead (np.matmul releases the
    GIL): one hand-off per call instead of one per product.
    """
    if _blas_controller() is None:
        return np.matmul(a, b, out=out)
    from ..kernels import jit  # here, not at import: Numba loads only when used
    if jit.get_num_threads() == 1:
        return np.matmul(a, b, out=out)
    with _blas_controller().limit(limits=1, user_api="blas"):
        jit._run(_product_range, len(a), out.size, a, b, out)
    return out


def _product_range(a, b, out, start, stop):
    np.matmul(a[start:stop], b[start:stop], out=out[start:stop])
