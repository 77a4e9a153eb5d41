"""Assignments: the student's copy is made right, and the grader scores what it should.

The attacks on the grader (a student after points without work) are in test_grader_attacks.py.
"""

import ast
import importlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minivgg.assignment import PARTS, MarkerError, grade, grade_main, make_assignment, make_main
from minivgg.assignment.checks import CHECKS, OVERLAP_HINT, Case, Expect, Wrong, judge
from minivgg.assignment.make import (
    BEGIN,
    DELEGATES,
    END,
    REFERENCE_ROOT,
    _enclosing_function,
    _part_in_file,
    cell_python,
    find_blocks,
    student_source,
)
from minivgg.assignment.parts import completed
from minivgg.assignment.selfcheck import check, check_main

grading = importlib.import_module("minivgg.assignment.grade")
NAMES = [part.name for part in PARTS]
POINTS = {part.name: part.points for part in PARTS}


@pytest.fixture(scope="module")
def fresh_copy(tmp_path_factory):
    out = tmp_path_factory.mktemp("student") / "hw"
    assert make_assignment(out) == NAMES
    return out


def reference_copy(tmp_path, file=None, old=None, new=None):
    """A copy of the reference package in tmp_path (markers and all), with ``old`` replaced by
    ``new`` in ``file``: a student's solution with one bug in it."""
    shutil.copytree(REFERENCE_ROOT / "minivgg", tmp_path / "minivgg",
                    ignore=shutil.ignore_patterns("__pycache__"))
    if file:
        edit(tmp_path, file, old, new)
    return tmp_path


def edit(root, file, old, new):
    path = root / "minivgg" / file
    source = path.read_text()
    assert source.count(old) == 1, f"{old!r} must occur once in {file}"
    path.write_text(source.replace(old, new))


def by_part(report):
    return {r.part: r for r in report.results}


def test_every_check_in_the_table_exists_and_shares_add_up():
    for part in PARTS:
        assert {name for name, _ in part.checks} <= set(CHECKS)
        assert sum(weight for _, weight in part.checks) == pytest.approx(1.0)
    assert len(set(NAMES)) == len(NAMES)


def test_the_reference_scores_full_marks_without_running_in_this_process(tmp_path):
    root = reference_copy(tmp_path)
    report = grade(root)
    assert [r.part for r in report.results] == NAMES
    assert report.score == report.max_score == sum(POINTS.values()), str(report)
    assert all(r.worst_error < 1e-4 for r in report.results), str(report)   # float32 cases: 1e-5
    assert all(c.passed for r in report.results for c in r.checks)
    # nothing of the graded copy was imported here: the student's code ran in children
    loaded = [m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)]
    assert not [f for f in loaded if Path(f).resolve().is_relative_to(root.resolve())]


@pytest.mark.parametrize("how", ["grader", "self-check"])
def test_a_fresh_copy_scores_zero_with_clear_messages(fresh_copy, how):
    report = grade(fresh_copy) if how == "grader" else check(fresh_copy)
    assert report.score == 0 and [r.part for r in report.results] == NAMES
    for result, part in zip(report.results, PARTS):
        assert result.message in [f"not implemented yet ({part.name}: implement {function} "
                                  f"(minivgg/{part.file}))" for function in part.functions]


def test_a_fresh_copy_parses_has_banners_and_lints(fresh_copy):
    reference = (REFERENCE_ROOT / "minivgg/kernels/naive.py").read_text()
    student = (fresh_copy / "minivgg/kernels/naive.py").read_text()
    assert "dx[n, c, h, w] += dout[n, c, oh, ow]" in reference
    assert "dx[n, c, h, w] += dout" not in student                  # the solution is gone
    assert "y = None\n" in student                                  # conv2d_direct returns y
    for path in (fresh_copy / "minivgg").rglob("*.py"):
        text = path.read_text()
        ast.parse(text, filename=str(path))
        assert not any(line.strip() in (BEGIN, END) for line in text.split("\n"))
    for part in PARTS:
        text = (fresh_copy / "minivgg" / part.file).read_text()
        for function in part.functions:
            assert f"PART {part.name} ({part.points} points), {function}:" in text
    result = subprocess.run([*ruff_command(), "check", "--no-cache", "minivgg"], cwd=fresh_copy,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not list(fresh_copy.rglob("__pycache__")) and not list(fresh_copy.rglob("*.nb[ic]"))


def ruff_command():
    if importlib.util.find_spec("ruff"):
        return [sys.executable, "-m", "ruff"]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.skip("ruff is not installed")


# ------------------------------------------------------------------------------------------------
# no solution anywhere in the copy
# ------------------------------------------------------------------------------------------------

def _normal(node, memo):
    """A statement's structure without positions or contexts, with ``a += b`` written like
    ``a = b`` (so '= where += belongs' is still the same body)."""
    key = id(node)
    if key not in memo:
        if isinstance(node, ast.AugAssign):
            text = f"Assign({_normal(node.target, memo)},{_normal(node.value, memo)})"
        elif isinstance(node, ast.AST):
            text = type(node).__name__ + "(" + ",".join(
                _normal(getattr(node, f, None), memo) for f in node._fields if f != "ctx") + ")"
        elif isinstance(node, list):
            text = "[" + ",".join(_normal(n, memo) for n in node) + "]"
        else:
            text = repr(node)
        memo[key] = text
    return memo[key]


def _dumps(statements, memo=None):
    memo = {} if memo is None else memo
    return [_normal(s, memo) for s in statements]


def block_statements(tree, block):
    """The statements between a block's markers (the outermost list of statements holding any)."""
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            inside = [s for s in body if isinstance(s, ast.stmt) and block.begin < s.lineno < block.end] \
                if isinstance(body, list) else []
            if inside:
                return inside
    return []


def reference_bodies(parts):
    """{(file, where): normalised statements} of every marked block of ``parts`` and of every
    function DELEGATES replaces for them."""
    bodies = {}
    for path in sorted((REFERENCE_ROOT / "minivgg").rglob("*.py")):
        relative = path.relative_to(REFERENCE_ROOT / "minivgg").as_posix()
        source = path.read_text()
        tree = ast.parse(source)
        for block in find_blocks(source.split("\n"), relative):
            function, _ = _enclosing_function(tree, block.begin)
            if _part_in_file(relative)(function, block.begin).name in parts:
                bodies[relative, block.begin] = _dumps(block_statements(tree, block))
        for (file, function), (blanks, keep, _) in DELEGATES.items():
            if file == relative and set(blanks) & set(parts) and keep not in parts:
                node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
                body = node.body[1:] if isinstance(node.body[0], ast.Expr) else node.body
                bodies[relative, function] = _dumps(body)
    return bodies


def statement_runs(copy):
    """Every body (list of statements) in the copy's .py files and notebook cells, normalised."""
    sources = [p.read_text() for p in (copy / "minivgg").rglob("*.py")]
    for notebook in (copy / "notebooks").glob("*.ipynb"):
        sources += [cell_python("".join(c["source"]))
                    for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    runs = []
    for source in sources:
        memo, tree = {}, ast.parse(source)
        for node in ast.walk(tree):
            for body in (getattr(node, name, None) for name in ("body", "orelse", "finalbody")):
                if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                    runs.append(_dumps(body, memo))
    return runs


def contains(run, block):
    return any(run[i:i + len(block)] == block for i in range(len(run) - len(block) + 1))


@pytest.mark.parametrize("only", [None] + [completed([name]) for name in NAMES])
def test_no_reference_body_of_an_assigned_function_is_anywhere_in_the_copy(tmp_path, only):
    assigned = make_assignment(tmp_path / "hw", only=only)
    bodies = reference_bodies(assigned)
    assert bodies                                                   # the scan has something to find
    runs = statement_runs(tmp_path / "hw")
    found = [where for where, block in bodies.items() if any(contains(run, block) for run in runs)]
    assert not found, f"solutions left in the copy: {found}"
    # and the scan does find a body that is there: the reference itself holds them all
    reference_runs = statement_runs(REFERENCE_ROOT)
    assert all(any(contains(run, block) for run in reference_runs) for block in bodies.values())


@pytest.mark.parametrize("part, file, old, new", [
    ("im2col", "kernels/naive.py", 'raise NotImplementedError("im2col: implement im2col',
     'from . import jit\n    return jit.im2col(x, kernel, stride, padding, out)  #'),
    ("im2col", "kernels/naive.py", 'raise NotImplementedError("im2col: implement im2col',
     'from . import vectorized\n    return vectorized.im2col(x, kernel, stride, padding, out)  #'),
    ("maxpool", "kernels/naive.py", 'raise NotImplementedError("maxpool: implement maxpool_forward',
     'from . import vectorized\n    return vectorized.maxpool_forward(x, kernel, stride)  #'),
    ("lrn", "kernels/naive.py", 'raise NotImplementedError("lrn: implement lrn_forward',
     'from . import jit\n    return jit.lrn_forward(x, size, alpha, beta, k)  #'),
    ("relu", "layers/activation.py", 'raise NotImplementedError("relu: implement ReLU.forward',
     'self._y = kernels("numba").relu_forward(x)  #'),
    ("dropout", "layers/dropout.py", 'raise NotImplementedError("dropout: implement Dropout._apply',
     'return kernels("numba").dropout_apply(a, self._draws, self.p, scale)  #'),
])
def test_delegating_to_another_backend_of_the_copy_earns_nothing(tmp_path, part, file, old, new):
    make_assignment(tmp_path / "hw", only=completed([part]))
    edit(tmp_path / "hw", file, old, new)
    (result,) = grade(tmp_path / "hw", parts=[part]).results
    assert result.points == 0, str(result)


def test_only_im2col_numpy_leaves_no_naive_sibling(tmp_path):
    make_assignment(tmp_path / "hw", only=["im2col_numpy", "conv_direct"])
    naive = (tmp_path / "hw/minivgg/kernels/naive.py").read_text()
    assert "return vectorized.im2col(" in naive and "+= cols[" not in naive
    report = grade(tmp_path / "hw", parts=["im2col", "im2col_numpy", "conv_layer"])
    assert [r.points for r in report.results] == [0, 0, 15], str(report)


# ------------------------------------------------------------------------------------------------
# grading: parts, partial credit, hints
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("part", ["maxpool", "softmax_ce", "conv_layer"])
def test_a_copy_with_one_part_done_scores_exactly_that_part(tmp_path, part):
    make_assignment(tmp_path / "hw", only=[name for name in NAMES if name != part])
    report = grade(tmp_path / "hw", parts=NAMES)
    assert [r.part for r in report.results if r.points] == [part], str(report)
    assert report.score == POINTS[part]


def test_a_correct_forward_with_a_wrong_backward_earns_the_forward_share(tmp_path):
    root = reference_copy(tmp_path, "layers/linear.py", "return dout @ self.params[\"weight\"]",
                          "return 2 * dout @ self.params[\"weight\"]")
    (result,) = grade(root, parts=["linear"]).results
    assert result.points == pytest.approx(0.4 * POINTS["linear"])
    assert [c.passed for c in result.checks] == [True, False]
    assert "linear_backward: Linear.backward's dx on x (3, 7) differs" in result.message
    listed = grade(root, parts=["linear"]).text(checks=True)        # what check --verbose prints
    assert "  - check linear_forward: 4/4, passed\n  - check linear_backward: 0/6, FAILED: " \
        "Linear.backward's dx on x (3, 7) differs" in listed, listed


# (file, old, new, part, what the message must say)
MISTAKES = [
    ("kernels/naive.py", "dx[n, c, h, w] += dout[n, c, oh, ow]", "dx[n, c, h, w] = dout[n, c, oh, ow]",
     "maxpool", "(+=, not =)"),
    ("kernels/naive.py", "dx[n, c, h, w] += cols[n, row, oh * Wo + ow]",
     "dx[n, c, h, w] = cols[n, row, oh * Wo + ow]", "im2col", "(+=, not =)"),
    ("kernels/naive.py", "np.sum(window * weight[f])", "np.sum(window * weight[f, :, ::-1, ::-1])",
     "conv_direct", "you flipped the kernel"),
    ("kernels/naive.py", "if x[n, c, h, w] > best:", "if x[n, c, h, w] >= best:",
     "maxpool", "the first in row-major order wins"),
    ("layers/softmax.py", "shifted = logits - logits.max(axis=1, keepdims=True)", "shifted = logits",
     "softmax_ce", "subtract each row's maximum"),
    ("layers/linear.py", "self.grads[\"bias\"][...] = dout.sum(axis=0)",
     "self.grads[\"bias\"][...] = dout.mean(axis=0)", "linear", "the batch's mean"),
    ("layers/conv.py", "self.grads[\"bias\"][...] = dout.sum(axis=(0, 2, 3))",
     "self.grads[\"bias\"][...] = dout.sum(axis=(0, 2, 3)) / len(dout)", "conv_layer",
     "the batch's mean"),
    ("conv/im2col.py", "self._cols2d, self._x_shape = cols2d, x.shape", "self._cols2d = cols2d",
     "conv_layer", "store x.shape in self._x_shape"),
    ("conv/im2col.py", "y = _times_columns(weight.reshape(F, K), cols2d, N)",
     "y = _times_columns(weight.reshape(F, K), cols2d, N).astype(np.float64)",
     "conv_layer", "a float32 input must give a float32 result"),
    ("optim.py", "v -= self.lr * g", "v += self.lr * g", "sgd_momentum", "after step 1 differs"),
    ("optim.py", "if decay:\n                    v -= (self.lr * decay) * w",
     "v -= (self.lr * self.weight_decay) * w", "sgd_momentum", "the bias was decayed"),
    ("optim.py", "                w += v\n", "                w = w + v\n", "sgd_momentum",
     "update the parameters in place"),
    ("layers/dropout.py", "self._draws = self.rng.random(dtype=x.dtype, out=draws)",
     "self._draws = np.random.random(x.shape).astype(x.dtype)", "dropout", "not from np.random"),
    ("kernels/naive.py", "cols = np.empty((N, C * kh * kw, Ho * Wo), dtype=x.dtype) if out is None else out",
     "cols = np.empty((N, C * kh * kw, Ho * Wo), dtype=x.dtype)", "im2col", "left the buffer unfilled"),
    ("arithmetic.py", "jump * stride,", "jump,", "receptive_field", "jump differs"),
    # the contract the network relies on (issue 10, item 5)
    ("kernels/vectorized.py", "np.copyto(out.reshape(N, C, kernel[0], kernel[1], Ho, Wo), "
     "windows.transpose(0, 1, 4, 5, 2, 3))", "np.copyto(out.reshape(N, -1), windows.transpose("
     "0, 1, 4, 5, 2, 3).reshape(N, -1))", "im2col_numpy", "out.reshape may be a copy"),
    ("kernels/naive.py", "dx = np.zeros(x_shape, dtype=cols.dtype) if out is None else out",
     "dx = np.zeros(x_shape, dtype=cols.dtype)", "im2col", "col2im(..., out=buffer)"),
    ("conv/im2col.py", "kernels(self.backend).im2col(", "kernels(\"naive\").im2col(", "conv_layer",
     "Conv2d(backend='numpy') called kernels.naive's im2col or col2im: call kernels(self.backend)"),
    ("layers/linear.py", "self._x = check_input(self, x, 2, self.in_features)",
     "self._x = check_input(self, x, 2, self.in_features) if self._x is None else self._x",
     "linear", "backward must use what the last forward kept"),
    ("layers/linear.py", "return x @ self.params[\"weight\"].T + self.params[\"bias\"]",
     "return (x @ self.params[\"weight\"].T + self.params[\"bias\"]).astype(np.float64)",
     "linear", "a float32 input must give a float32 result"),
    ("layers/dropout.py", "return self._apply(x)", "return self._apply(x).astype(\"float64\")",
     "dropout", "Dropout(0.2) on x (200, 500) in float32 is float64"),
    ("kernels/naive.py", "y = np.empty((N, C, Ho, Wo), dtype=x.dtype)\n    argmax",
     "y = np.empty((N, C, Ho, Wo))\n    argmax", "maxpool", "a float32 input must give a float32"),
    ("layers/activation.py", "return np.where(y > 0, dout, 0).astype(dout.dtype, copy=False)",
     "return dout * (y > 0).astype(float)", "relu", "ReLU in float32 on x (3, 5): backward's dx is "
     "float64; a float32 input must give a float32 result"),
]


@pytest.mark.parametrize("file, old, new, part, hint", MISTAKES)
def test_each_common_mistake_is_caught_and_named(tmp_path, file, old, new, part, hint):
    root = reference_copy(tmp_path, file, old, new)
    if "np.random.random" in new:
        edit(root, file, "from ..backend import", "import numpy as np\n\nfrom ..backend import")
    (result,) = grade(root, parts=[part]).results
    assert result.points < result.max_points, str(result)
    messages = " ".join(c.message for c in result.checks)
    assert hint in messages, messages


# the loop line each of im2col and col2im has after its row formula, and two mistakes in it
IM2COL_LINE = ("row = (c * kh + i) * kw + j\n" + " " * 20 + "for oh in range(Ho):\n" + " " * 24 +
               "for ow in range(Wo):\n" + " " * 28 + "h, w = oh * sh + i - ph, ow * sw + j - pw\n" +
               " " * 28)
ROW_ORDER = ("row = (c * kh + i) * kw + j", "row = (i * kw + j) * C + c")
NO_OFFSET = ("h, w = oh * sh + i - ph, ow * sw + j - pw", "h, w = oh * sh + i, ow * sw + j")


@pytest.mark.parametrize("function, mistake, hint", [
    ("im2col", ROW_ORDER, "im2col on x (2, 2, 6, 5), kernel=(3, 1), stride=(3, 1), padding=0 is "
                          "wrong: its rows are in (i, j, c) order"),
    ("col2im", ROW_ORDER, "col2im on x (2, 2, 6, 5), kernel=(3, 1), stride=(3, 1), padding=0 is "
                          "wrong: its rows are in (i, j, c) order"),
    ("im2col", NO_OFFSET, "im2col on x (2, 3, 7, 7), kernel=3, stride=1, padding=1 is wrong: the "
                          "windows are not shifted by the padding"),
    ("col2im", NO_OFFSET, "col2im on x (2, 3, 7, 7), kernel=3, stride=1, padding=1 is wrong: the "
                          "windows are not shifted by the padding"),
])
def test_im2col_row_order_and_padding_offset_are_named(tmp_path, function, mistake, hint):
    line = IM2COL_LINE + ("inside" if function == "im2col" else "if 0 <=")
    root = reference_copy(tmp_path, "kernels/naive.py", line, line.replace(*mistake))
    (result,) = grade(root, parts=["im2col"]).results
    assert result.points == 0 and hint in result.message, result.message
    assert "+=, not =" not in result.message          # the overlap hint is for unnamed errors


@pytest.mark.parametrize("fill", ["np.nan", "7.0", None])
def test_padding_left_unwritten_is_named_not_a_nan_error(tmp_path, fill):
    """None: np.empty's memory, often zeros here; the out= buffer the grader passes holds NaN."""
    root = reference_copy(tmp_path)
    if fill:
        edit(root, "kernels/naive.py", "cols = np.empty((N, C * kh * kw, Ho * Wo), dtype=x.dtype) if",
             f"cols = np.full((N, C * kh * kw, Ho * Wo), {fill}, dtype=x.dtype) if")
    edit(root, "kernels/naive.py", "cols[n, row, oh * Wo + ow] = x[n, c, h, w] if inside else 0",
         "if inside:\n" + " " * 32 + "cols[n, row, oh * Wo + ow] = x[n, c, h, w]")
    (result,) = grade(root, parts=["im2col"]).results
    assert result.points == 0
    assert "it is right except where a window covers the padding: those entries must be 0" \
        in result.message, result.message


def test_col2im_adding_into_an_unzeroed_out_buffer_is_caught(tmp_path):
    root = reference_copy(tmp_path, "kernels/naive.py", "    if out is not None:\n        dx[...] = 0\n", "")
    (result,) = grade(root, parts=["im2col"]).results
    assert result.points == 0 and "col2im(..., out=buffer)" in result.message
    assert "set it to 0 before adding" in result.message, result.message


def test_a_nan_where_the_reference_has_a_number_says_so_and_counts_as_infinite():
    expect = Expect("y", "y on x (3,)", np.zeros(3))
    with pytest.raises(Wrong) as caught:
        judge(expect, np.array([0.0, np.nan, 0.0]), {})
    assert caught.value.error == np.inf
    assert caught.value.hint.startswith("y on x (3,) has nan at (1,) (expected 0): an entry your "
                                        "code never wrote"), caught.value.hint
    with pytest.raises(Wrong, match="differs from the reference: relative error 1.0e"):
        judge(expect, np.array([0.0, 1.0, 0.0]), {})                 # a number: the usual message


@pytest.mark.parametrize("old, new, rule", [
    ("                            elif np.isnan(x[n, c, h, w]) and not np.isnan(best):   # NaN beats "
     "all\n                                best, where = x[n, c, h, w], h * W + w\n", "",
     "maxpool_ties: the NaN rule (a window holding NaN gives NaN, its first NaN wins"),
    ("best, where = x[n, c, h, w], h * W + w\n                    for i",
     "best, where = -np.inf, -1\n                    for i",
     "maxpool_ties: a window of -inf only (its maximum is its first pixel: start from the window's "
     "first element, not from -inf)"),
])
def test_the_max_pool_nan_and_minus_inf_rules_are_graded(tmp_path, old, new, rule):
    root = reference_copy(tmp_path, "kernels/naive.py", old, new)
    (result,) = grade(root, parts=["maxpool"]).results
    assert [c.passed for c in result.checks] == [True, False, True], str(result)
    assert result.points == pytest.approx(0.8 * POINTS["maxpool"]) and rule in result.message, \
        result.message


def test_lrn_with_alpha_divided_by_size_is_named(tmp_path):
    root = reference_copy(tmp_path)
    edit(root, "kernels/naive.py", "def lrn_forward(x, size, alpha, beta, k):\n",
         "def lrn_forward(x, size, alpha, beta, k):\n    alpha = alpha / size\n")
    (result,) = grade(root, parts=["lrn"]).results
    assert "do not divide it by size again" in result.message, result.message


def test_a_loss_summed_over_the_batch_is_named(tmp_path):
    root = reference_copy(tmp_path, "layers/softmax.py", "loss = -log_p[rows, labels].mean()",
                          "loss = -log_p[rows, labels].sum()")
    edit(root, "layers/softmax.py", "    dlogits /= N\n", "")
    (result,) = grade(root, parts=["softmax_ce"]).results
    assert "it is the sum over the batch" in result.message, result.message


def test_an_exception_shows_the_students_frame_only(tmp_path):
    root = reference_copy(tmp_path, "kernels/naive.py", "inside = 0 <= h < H and 0 <= w < W\n"
                          "                            cols[n, row",
                          "inside = 1 / 0\n                            cols[n, row")
    (result,) = grade(root, parts=["im2col"]).results
    assert result.message.startswith("ZeroDivisionError: division by zero "
                                     "(minivgg/kernels/naive.py:"), result.message
    assert "runner" not in result.message and "assignment" not in result.message


def test_an_import_error_in_one_file_costs_only_its_parts(tmp_path):
    root = reference_copy(tmp_path, "layers/linear.py", "class Flatten(Layer):", "class Flatten(Layer)")
    report = by_part(grade(root, parts=["linear", "maxpool", "softmax_ce", "im2col"]))
    assert report["linear"].points == 0
    assert report["linear"].message.startswith("SyntaxError"), report["linear"].message
    assert "minivgg/layers/linear.py" in report["linear"].message
    assert [report[p].points for p in ("maxpool", "softmax_ce", "im2col")] == [15, 10, 15]


def test_the_conv_layer_does_not_need_the_im2col_part(tmp_path):
    make_assignment(tmp_path / "hw", only=["conv_direct", "im2col", "im2col_numpy"])
    report = by_part(grade(tmp_path / "hw", parts=["im2col", "conv_layer"]))
    assert report["im2col"].points == 0 and report["conv_layer"].points == 15, report


# ------------------------------------------------------------------------------------------------
# the instructor's assignment file, the command line, batches
# ------------------------------------------------------------------------------------------------

def test_make_writes_the_instructors_file_beside_the_copy(tmp_path):
    assert make_main([str(tmp_path / "hw"), "--only", "linear,maxpool", "--seed", "7"]) == 0
    spec = json.loads((tmp_path / "hw.assignment.json").read_text())
    assert spec["parts"] == ["linear", "maxpool"] and spec["seed"] == 7
    assert spec["reference_sha256"] == grading.reference_hash()
    assert json.loads((tmp_path / "hw/assignment.json").read_text()) == {"parts": ["linear", "maxpool"]}
    assert "reference_sha256" not in (tmp_path / "hw/assignment.json").read_text()
    assert make_main([str(tmp_path / "hw")]) == 2                   # exists: no --force


@pytest.mark.parametrize("argv", [["assignment", "make", "OUT", "--onl", "relu"],
                                  ["grade", "OUT", "--assign", "hw.json"],
                                  ["check", "--pat", "OUT"]])
def test_no_abbreviated_options(argv, tmp_path, capsys):
    """"--onl" must not be taken for "--only", in the nested ``assignment make`` too (argparse
    allows abbreviations unless told not to, and nested subparsers do not inherit it)."""
    argv = [str(tmp_path / a) if a == "OUT" else a for a in argv]
    from minivgg.cli import main
    for run in (main, {"assignment": lambda a: make_main(a[1:]), "grade": grade_main,
                       "check": check_main}[argv[0]]):
        with pytest.raises(SystemExit) as exit_:
            run(argv if run is main else argv[1:])
        assert exit_.value.code == 2
        assert f"unrecognized arguments: {argv[-2]}" in capsys.readouterr().err
    assert not (tmp_path / "OUT").exists()


def test_grade_command_batch_csv_and_gradescope(tmp_path, capsys):
    make_assignment(tmp_path / "hw", only=["linear", "relu"])
    subs = tmp_path / "subs"
    for name in ("alice", "bob"):
        shutil.copytree(tmp_path / "hw", subs / name)
    edit(subs / "bob", "layers/activation.py", 'raise NotImplementedError("relu: implement ReLU.forward',
         'self._y = np.maximum(x, 0)  #')
    edit(subs / "bob", "layers/activation.py", 'raise NotImplementedError("relu: implement ReLU.backward',
         'return np.where(y > 0, dout, 0)  #')
    spec = str(tmp_path / "hw.assignment.json")
    assert grade_main([str(subs / "alice"), str(subs / "bob"), "--assignment", spec,
                       "--csv", str(tmp_path / "grades.csv")]) == 0
    rows = (tmp_path / "grades.csv").read_text().splitlines()
    assert rows[0] == "submission,part,points,max_points,passed,message"
    assert "bob,relu,5,5,1," in rows and "bob,total,5,15,0," in rows and "alice,total,0,15,0," in rows
    assert grade_main([str(subs / "alice"), "--assignment", spec,
                       "--csv", str(tmp_path / "grades.csv")]) == 2         # exists
    assert grade_main([str(subs / "bob"), "--assignment", spec, "--gradescope",
                       str(tmp_path / "results.json"), "--json"]) == 0
    gradescope = json.loads((tmp_path / "results.json").read_text())
    assert gradescope["score"] == 5
    assert [(t["name"], t["score"], t["max_score"]) for t in gradescope["tests"]] == [
        ("linear", 0, 10), ("relu", 5, 5)]
    assert all(t["visibility"] == "visible" and t["output"] for t in gradescope["tests"])
    capsys.readouterr()
    assert grade_main([str(subs / "bob"), "--assignment", str(subs / "bob/assignment.json")]) == 2
    assert "not an instructor's assignment file" in capsys.readouterr().err


def test_a_poisoned_reference_is_an_error_not_a_score(tmp_path, capsys):
    make_assignment(tmp_path / "hw", only=["relu"])
    spec = json.loads((tmp_path / "hw.assignment.json").read_text())
    spec["reference_sha256"] = "0" * 64                 # as if checks.py had changed since make
    (tmp_path / "poisoned.json").write_text(json.dumps(spec))
    assert grade_main([str(tmp_path / "hw"), "--assignment", str(tmp_path / "poisoned.json")]) == 3
    assert "not the one this assignment was made with" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# the student's self-check
# ------------------------------------------------------------------------------------------------

def test_the_self_check_agrees_with_the_grader(tmp_path):
    make_assignment(tmp_path / "hw")
    shutil.copyfile(REFERENCE_ROOT / "minivgg/layers/linear.py", tmp_path / "hw/minivgg/layers/linear.py")
    edit(tmp_path / "hw", "layers/activation.py", 'raise NotImplementedError("relu: implement ReLU.forward',
         'self._y = np.maximum(x, 0)  #')                    # forward right, backward not written
    own = check(tmp_path / "hw")
    assert [(r.part, r.points) for r in own.results if r.points] == [("linear", 10), ("relu", 2.5)]
    graded = grade(tmp_path / "hw")
    assert [r.points for r in own.results] == [r.points for r in graded.results]
    assert [r.message for r in own.results] == [r.message for r in graded.results]


def test_the_self_check_command_in_a_fresh_copy(fresh_copy):
    result = subprocess.run([sys.executable, "-m", "minivgg", "check", "relu", "receptive_field"],
                            cwd=fresh_copy, capture_output=True, text=True,
                            env={"PYTHONPATH": str(fresh_copy), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1, result.stderr
    assert "not implemented yet (relu: implement ReLU.forward" in result.stdout
    assert "total                0/10" in result.stdout
    listed = subprocess.run([sys.executable, "-m", "minivgg", "check", "-v", "relu"], cwd=fresh_copy,
                            capture_output=True, text=True,
                            env={"PYTHONPATH": str(fresh_copy), "PATH": "/usr/bin:/bin"})
    assert "  - check relu_forward: 0/2.5, FAILED: not implemented yet" in listed.stdout, listed
    readme = (fresh_copy / "README.md").read_text()
    assert "python -m minivgg check" in readme and "| `im2col` | 15 | `minivgg/kernels/naive.py` |" in readme
    assert "python -m minivgg check -v maxpool" in readme             # what --verbose prints
    assert 'pip install -e ".[plot]" jupyterlab' in readme and "jupyter nbconvert --to notebook " \
        "--execute" in readme                          # nbconvert comes with jupyterlab


def test_self_check_cases_are_public_and_the_grader_draws_fresh_ones(fresh_copy):
    public = (fresh_copy / "minivgg/assignment/public/im2col.npz")
    with np.load(public) as stored:
        stored_inputs = {k: stored[k] for k in stored.files if ".in." in k}
    ref = grading._reference()
    fresh = grading.part_cases(PARTS[1], ref, np.random.default_rng([12345, 1]))
    first = fresh["im2col_naive"][0].inputs["a0"]
    assert not any(a.shape == first.shape and np.array_equal(a, first) for a in stored_inputs.values())


# ------------------------------------------------------------------------------------------------
# markers (make's own checks)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, line, problem", [
    (f"def f():\n    {BEGIN}\n    x = 1\n", 2, "is never closed"),
    (f"def f():\n    x = 1\n    {END}\n", 3, "without a"),
    (f"def f():\n    {BEGIN}\n    {BEGIN}\n    {END}\n    {END}\n", 3, "cannot nest"),
    (f"def f():\n    {BEGIN}\n    x = 1\n  {END}\n", 4, "indented differently"),
    (f"def g():\n    {BEGIN}\n    x = 1\n    {END}\n", 2, "belongs to no part"),
])
def test_marker_problems_are_errors_naming_file_and_line(source, line, problem):
    with pytest.raises(MarkerError, match=rf"^minivgg/x\.py:{line}: .*{problem}"):
        student_source(source, "minivgg/x.py", _part_in_file("x.py"), set())


def test_a_bad_marker_in_the_package_stops_make_before_writing(tmp_path):
    root = reference_copy(tmp_path / "src", "layers/linear.py", f"        {END}\n\n    def backward",
                          "\n    def backward")
    out = tmp_path / "out"
    with pytest.raises(MarkerError, match=r"minivgg/layers/linear.py:\d+: .*cannot nest"):
        make_assignment(out, root=root)
    assert not out.exists()


def test_only_leaves_the_other_parts_solved(tmp_path):
    assert make_assignment(tmp_path / "hw", only=["linear"]) == ["linear"]
    naive = (tmp_path / "hw/minivgg/kernels/naive.py").read_text()
    assert "NotImplementedError" not in naive and BEGIN not in naive
    assert "dx[n, c, h, w] += dout[n, c, oh, ow]" in naive
    assert "PART linear" in (tmp_path / "hw/minivgg/layers/linear.py").read_text()
    report = grade(tmp_path / "hw", parts=["linear", "maxpool", "conv_direct"])
    assert [(r.part, r.points) for r in report.results] == [("conv_direct", 10), ("maxpool", 15),
                                                             ("linear", 0)]


def test_a_cell_line_starting_with_percent_is_python_when_the_cell_parses():
    formatted = 'print("%.1f"\n      % (1.0,))'
    assert cell_python(formatted) == formatted
    assert cell_python("%matplotlib inline\nx = 1") == "\nx = 1"


def test_reports_are_strict_json_when_an_error_is_infinite_or_not_measured():
    """An output with inf where the reference is finite has an infinite error: the JSON report
    says null (its message says why), never the non-standard 'Infinity' that strict parsers
    (Gradescope's, jq) refuse."""
    from minivgg.assignment.grade import CheckResult, GradeReport, PartResult, gradescope_json

    checks = [CheckResult("values", 1.0, False, float("inf"), "output is inf at (0, 0)")]
    report = GradeReport("sub", [PartResult("relu", False, 0.0, 5, float("inf"), "wrong", checks),
                                 PartResult("im2col", False, 0.0, 15, float("nan"), "missing")],
                         seed=0)

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    parsed = json.loads(report.to_json(), parse_constant=refuse)
    assert [p["worst_error"] for p in parsed["parts"]] == [None, None]
    assert parsed["parts"][0]["checks"][0]["worst_error"] is None
    assert json.loads(gradescope_json(report), parse_constant=refuse)["score"] == 0


def test_the_overlap_hint_follows_what_the_check_says_not_the_messages_text(tmp_path):
    """The "+=, not =" hint is added to an output whose Expect accumulates overlapping windows
    (col2im's dx), when no named hint explains the error and the disjoint windows were right;
    whatever the texts say: a named hint that reads "differs from the reference" gets none."""
    from minivgg.assignment.grade import judge_check
    from minivgg.assignment.sandbox import Outcome
    right, wrong = np.zeros((2, 3)), np.ones((2, 3))

    def outcome(groups):
        for group in range(groups):
            (tmp_path / f"g{group}").mkdir(exist_ok=True)
            np.save(tmp_path / f"g{group}" / "dx.npy", wrong if group else right)
        return Outcome("finished", 0.0, 0.0, [{"group": g, "saved": ["dx"]}
                                              for g in range(groups)], "", tmp_path)

    def cases(**expect):
        disjoint, overlapping = Case("disjoint"), Case("overlapping", overlapping=True)
        disjoint.expect("dx", "the adjoint on disjoint windows", right)
        overlapping.expect("dx", "the adjoint on overlapping windows", right, **expect)
        return [disjoint, overlapping]
    _, message = judge_check("im2col_naive", cases(accumulates=True), 0, outcome(2))
    assert message.endswith(OVERLAP_HINT), message             # "what" names no function
    _, message = judge_check("im2col_naive", cases(accumulates=True, hints=[
        (wrong, "it differs from the reference by one everywhere")]), 0, outcome(2))
    assert OVERLAP_HINT not in message and "by one everywhere" in message, message
    _, message = judge_check("im2col_naive", cases(), 0, outcome(2))
    assert OVERLAP_HINT not in message, message                # an output that does not add up


def test_the_self_check_keeps_every_field_of_the_graders_expects(tmp_path):
    """The copy's public cases are the grader's: each Expect comes back field for field (the
    overlap hint's ``accumulates`` included, or the self-check would not give it)."""
    from dataclasses import fields

    from minivgg.assignment.grade import _reference, part_cases
    from minivgg.assignment.selfcheck import load_public, save_public
    part = next(p for p in PARTS if p.name == "maxpool")
    built = part_cases(part, _reference(), np.random.default_rng(0))
    save_public("maxpool", built, tmp_path)
    loaded = load_public("maxpool", tmp_path)
    pairs = [(e, f) for check in built for c, d in zip(built[check], loaded[check])
             for e, f in zip(c.expects, d.expects)]
    assert any(e.accumulates for e, _ in pairs)
    for e, f in pairs:
        for name in (f.name for f in fields(Expect) if f.name not in ("value", "hints")):
            assert getattr(e, name) == getattr(f, name), (e.what, name)
