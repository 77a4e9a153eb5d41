"""The assignment's parts, one row each: the only place a part is declared.

A row gives the part's name, the file (inside the package) that holds its marked code, its
points, the checks that grade it (names in :data:`minivgg.assignment.checks.CHECKS`, each
with its share of the points; the shares add up to 1), and its functions (``Class.method`` for
a method), each with the task its banner shows the student. To add a part, add a row here and
put solution markers (nbgrader's, each on a line of its own, indented like the code) around the
code the student should write in those functions.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    name: str
    file: str                   # relative to the package directory, e.g. "kernels/naive.py"
    points: int
    checks: tuple               # (check name, share of the points)
    functions: dict             # qualified name -> what to implement there (the banner's text)


PARTS = tuple(Part(*row) for row in [
    ("conv_direct", "kernels/naive.py", 10, (("conv_direct", 1.0),), {
        "conv2d_direct": "pad x with zeros, then set every y[n, f, oh, ow] to bias[f] plus the sum "
                         "of weight[f] times its window of the padded x (no kernel flip)."}),
    ("im2col", "kernels/naive.py", 15, (("im2col_naive", 1.0),), {
        "im2col": "copy every receptive field of x into its column of cols, rows in (c, i, j) "
                  "order, 0 where the window covers padding.",
        "col2im": "the adjoint of im2col: add each entry of cols back to the pixel of dx it was "
                  "copied from (entries from the padding are dropped)."}),
    ("im2col_numpy", "kernels/vectorized.py", 10, (("im2col_numpy", 1.0),), {
        "im2col": "fill out (allocate it if None) from the window view _windows() gives, in one "
                  "copy: no Python loops.",
        "col2im": "build the padded x_pad with one strided slice addition per kernel offset (i, "
                  "j); the code below crops it to dx."}),
    ("maxpool", "kernels/naive.py", 15, (("maxpool_kernels", 0.6), ("maxpool_ties", 0.2),
                                              ("maxpool_gradients", 0.2)), {
        "maxpool_forward": "fill y with each window's maximum and argmax with where it was, as "
                           "h * W + w; the first maximum in row-major order wins ties (the "
                           "docstring gives the NaN and -inf rules, graded too).",
        "maxpool_backward": "route each output's gradient to the input that was its window's "
                            "maximum; windows that overlap can share one, so gradients add up."}),
    ("lrn", "kernels/naive.py", 15, (("lrn_kernels", 0.7), ("lrn_gradients", 0.3)), {
        "lrn_forward": "fill scale = k + alpha * (sum of x^2 over the channel window of each "
                       "channel, see _window); the code below forms y.",
        "lrn_backward": "fill dx: the direct path through x_j plus the paths through every "
                        "scale_c whose window holds channel j (the docstring's formula)."}),
    ("softmax_ce", "layers/softmax.py", 10,
     (("softmax_ce_values", 0.7), ("softmax_ce_extreme", 0.3)), {
         "log_softmax": "log p = z - logsumexp(z) row by row, without overflow at logits of 1e4 "
                        "(subtract each row's maximum first).",
         "softmax_cross_entropy": "the mean negative log-likelihood of the labels and its "
                                  "gradient (softmax - onehot) / N."}),
    ("linear", "layers/linear.py", 10, (("linear_forward", 0.4), ("linear_backward", 0.6)), {
        "Linear.forward": "y = x W^T + b.",
        "Linear.backward": "fill self.grads['weight'] and self.grads['bias'], return dx."}),
    ("conv_layer", "conv/im2col.py", 15, (("conv_forward", 0.4), ("conv_backward", 0.6)), {
        "Im2col.forward": "im2col the input, one matrix product with the weights per image (or "
                          "for the batch), add the bias; keep x.shape in self._x_shape and what "
                          "backward needs (the columns).",
        "Im2col.backward": "fill dweight (dy times the columns, summed over the batch), return "
                           "dx = col2im(weight^T dy)."}),
    ("relu", "layers/activation.py", 5, (("relu_forward", 0.5), ("relu_backward", 0.5)), {
        "ReLU.forward": "self._y = max(0, x), kept for backward.",
        "ReLU.backward": "return dout where the output was positive, 0 elsewhere, in dout's "
                         "dtype."}),
    ("dropout", "layers/dropout.py", 10, (("dropout_layer", 1.0),), {
        "Dropout.forward": "draw one uniform number per element of x from self.rng into "
                           "self._draws (a unit is kept where its draw is >= p).",
        "Dropout._apply": "return a times the mask, divided by 1 - p (inverted dropout)."}),
    ("sgd_momentum", "optim.py", 10, (("sgd_momentum", 0.8), ("sgd_in_place", 0.2)), {
        "SGD.step": "Caffe's update, in place: v = momentum v - lr (g + weight_decay w), the "
                    "decay only where self.decays(name); then w += v."}),
    ("receptive_field", "arithmetic.py", 5, (("receptive_field", 1.0),), {
        "next_field": "one step of the module docstring's three recurrences: the field, jump "
                      "and start after a window of size kernel, stride and padding."}),
])

# What the copy's solved code would compute for a student: an assigned part listed here needs one
# of its parts assigned too (blanked in the copy), else ``make`` refuses, naming them. Graded
# copies refuse only calls of the library's other convolutions (sandbox.STAND_INS); these are
# the parts' own functions, which the copy must keep solved when they are not assigned.
GIVEN_AWAY = {
    "conv_direct": (("im2col", "im2col_numpy"), "im2col and one matrix product are conv2d_direct"),
    "im2col": (("conv_direct",), "conv2d_direct with one-hot weights is im2col (and, on a dilated "
                                 "input, col2im)"),
    "im2col_numpy": (("conv_direct",), "conv2d_direct with one-hot weights is im2col (and, on a "
                                       "dilated input, col2im)"),
    "conv_layer": (("conv_direct",), "conv2d_direct is Im2col.forward (and, transposed, its "
                                     "backward)"),
}


def given_away(assigned):
    """Why the copy of ``assigned`` would hand a part's answer away, one sentence per part whose
    GIVEN_AWAY parts are all left solved; [] when none."""
    return [f"{part} needs {' or '.join(needs)} assigned too: solved in the copy, {why}"
            for part, (needs, why) in GIVEN_AWAY.items()
            if part in assigned and not any(name in assigned for name in needs)]


def completed(assigned):
    """``assigned`` plus, while a part's GIVEN_AWAY parts are all solved, the first of them: the
    smallest assignment holding these parts that ``make`` accepts."""
    assigned = list(assigned)
    while missing := [needs[0] for part, (needs, _) in GIVEN_AWAY.items()
                      if part in assigned and not any(name in assigned for name in needs)]:
        assigned += list(dict.fromkeys(missing))
    return assigned
