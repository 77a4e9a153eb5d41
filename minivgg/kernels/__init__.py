"""The hot loops, three ways. Each module has the same functions with the same arguments:

    im2col(x, kernel, stride, padding, out=None)      x (N, C, H, W) -> cols (N, C*kh*kw, Ho*Wo)
    col2im(cols, x_shape, kernel, stride, padding, out=None)            cols -> dx (N, C, H, W)
    maxpool_forward(x, kernel, stride)                 -> y (N, C, Ho, Wo), argmax (N, C, Ho, Wo)
    maxpool_backward(dout, argmax, x_shape)            -> dx (N, C, H, W)
    lrn_forward(x, size, alpha, beta, k)               -> y, scale (both (N, C, H, W))
    lrn_backward(dout, x, scale, size, alpha, beta)    -> dx (N, C, H, W)

``kernel``, ``stride`` and ``padding`` are (height, width) pairs. Conventions every backend keeps:

* cols rows are ordered (c, i, j), channel slowest, so ``weight.reshape(F, -1) @ cols[n]`` is the
  convolution; cols columns are output positions in row-major (oh, ow) order.
* ``argmax`` holds the flat index ``h * W + w`` of the maximum inside its (H, W) plane. Tie rule:
  the *first* maximum in row-major window order wins (as ``np.argmax``), and only it gets gradient.
  NaN rule (PyTorch's and ``np.max``'s): NaN counts as larger than every number, so a window
  holding a NaN gives NaN and its first NaN gets the gradient (PyTorch sends it to the last NaN).
* LRN sums squares over the ``size`` channels ``c - size//2 ... c + (size-1)//2`` (clipped at the
  edges), and ``scale = k + alpha * sum``; ``y = x * scale**-beta``. ``alpha`` arrives already in
  the convention the layer chose (see minivgg/layers/lrn.py). Every backend sums the squares in
  float64 (in float32, x^2 overflows from |x| = 1.8e19), each window afresh (a running sum loses
  small channels next to large ones), rounds ``scale`` to x's dtype once, and computes y in x's
  dtype. Documented tolerance between backends: y and scale to rtol 1e-5 in float32, 1e-12 in
  float64; dx, a difference of two terms, to that times the terms' size (tests/test_kernels.py).

Pick one with :func:`minivgg.backend.kernels`.
"""
