"""Assignments: the student's copy is made right, and the grader scores what it should."""

import ast
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import minivgg
from minivgg.assignment import PARTS, MarkerError, grade, grade_main, make_assignment, make_main
from minivgg.assignment.checks import CHECKS
from minivgg.assignment.make import BEGIN, END, REFERENCE_ROOT, student_source

NAMES = [part.name for part in PARTS]


def reference_modules():
    return {name: m for name, m in sys.modules.items() if name.split(".")[0] == "minivgg"}


@pytest.fixture(scope="module")
def fresh_copy(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    assert make_assignment(out) == NAMES
    return out


def reference_copy(tmp_path, file=None, old=None, new=None):
    """A copy of the reference package in tmp_path (markers and all), with ``old`` replaced by
    ``new`` in ``file``: a student's solution with one bug in it."""
    shutil.copytree(REFERENCE_ROOT / "minivgg", tmp_path / "minivgg",
                    ignore=shutil.ignore_patterns("__pycache__"))
    if file:
        path = tmp_path / "minivgg" / file
        source = path.read_text()
        assert source.count(old) == 1, f"{old!r} must occur once in {file}"
        path.write_text(source.replace(old, new))
    return tmp_path


def test_every_check_in_the_table_exists():
    assert {name for part in PARTS for name in part.checks} <= set(CHECKS)
    assert len(set(NAMES)) == len(NAMES)


def test_the_reference_scores_full_marks():
    before = reference_modules()
    report = grade(REFERENCE_ROOT)
    assert [r.part for r in report.results] == NAMES
    assert report.score == report.max_score == sum(p.points for p in PARTS), str(report)
    assert all(r.worst_error < 1e-5 for r in report.results), str(report)
    # the student's package was imported under its own name and forgotten; minivgg is untouched
    after = reference_modules()
    assert all(after[name] is module for name, module in before.items())
    package = REFERENCE_ROOT / "minivgg"
    assert all(package in Path(m.__file__).resolve().parents for m in after.values())
    assert not [name for name in sys.modules if name.startswith("student_minivgg")]


def test_a_fresh_copy_imports_and_scores_zero_with_clear_messages(fresh_copy):
    report = grade(fresh_copy)
    assert report.score == 0 and [r.part for r in report.results] == NAMES
    for result, part in zip(report.results, PARTS):
        assert result.message in [f"not implemented yet ({part.name}: implement {function} "
                                  f"(minivgg/{part.file}))" for function in part.functions]
    assert minivgg.kernels.naive.__name__ == "minivgg.kernels.naive"


def test_a_fresh_copy_parses_has_banners_and_no_solutions(fresh_copy):
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


def ruff_command():
    if importlib.util.find_spec("ruff"):
        return [sys.executable, "-m", "ruff"]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.skip("ruff is not installed")


def test_a_fresh_copy_lints_cleanly(fresh_copy):
    files = sorted({str(fresh_copy / "minivgg" / part.file) for part in PARTS})
    result = subprocess.run([*ruff_command(), "check", "--no-cache", *files], cwd=fresh_copy,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("part", ["maxpool", "softmax_ce", "conv_layer"])
def test_a_copy_with_one_part_done_scores_exactly_that_part(tmp_path, part):
    make_assignment(tmp_path, only=[name for name in NAMES if name != part])
    report = grade(tmp_path, parts=NAMES)
    assert [r.part for r in report.results if r.passed] == [part], str(report)
    assert report.score == next(p.points for p in PARTS if p.name == part)


@pytest.mark.parametrize("file, old, new, part, hint", [
    ("kernels/naive.py", "dx[n, c, h, w] += dout[n, c, oh, ow]", "dx[n, c, h, w] = dout[n, c, oh, ow]",
     "maxpool", "maxpool_backward on x (2, 2, 7, 9), kernel (3, 3), stride (2, 2) differs"),
    ("kernels/naive.py", "dx[n, c, h, w] += cols[n, row, oh * Wo + ow]",
     "dx[n, c, h, w] = cols[n, row, oh * Wo + ow]", "im2col", "col2im on x (2, 3, 7, 7)"),
    ("kernels/naive.py", "np.sum(window * weight[f])", "np.sum(window * weight[f, :, ::-1, ::-1])",
     "conv_direct", "you flipped the kernel"),
    ("kernels/naive.py", "if x[n, c, h, w] > best:", "if x[n, c, h, w] >= best:",
     "maxpool", "tie rule broken"),
    ("layers/softmax.py", "shifted = logits - logits.max(axis=1, keepdims=True)", "shifted = logits",
     "softmax_ce", "subtract each row's maximum"),
    ("layers/linear.py", "np.matmul(dout.T, x, out=self.grads[\"weight\"])",
     "np.matmul(dout.T, x[::-1], out=self.grads[\"weight\"])", "linear",
     "Linear.backward: the gradient of weight is wrong"),
    ("conv/im2col.py", "weight.reshape(F, K).T, dy2d",
     "weight[:, :, ::-1, ::-1].reshape(F, K).T, dy2d", "conv_layer",
     "Conv2d.backward: the gradient of x is wrong on x (2, 3, 7, 7), kernel (3, 3), stride (1, 1), "
     "padding (1, 1)"),
    ("optim.py", "v -= self.lr * g", "v += self.lr * g", "sgd_momentum", "after step 1 differs"),
])
def test_a_subtly_wrong_part_is_caught_and_named(tmp_path, file, old, new, part, hint):
    report = grade(reference_copy(tmp_path, file, old, new), parts=[part])
    (result,) = report.results
    assert not result.passed and result.points == 0
    assert hint in result.message, result.message
    if "= dout[n, c, oh, ow]" in new or "= cols[" in new:
        assert "sum of their gradients (+=, not =)" in result.message


def test_other_errors_in_student_code_score_zero_with_one_line(tmp_path):
    report = grade(reference_copy(tmp_path, "kernels/naive.py", "row = (c * kh + i) * kw + j\n"
                                  "                    for oh in range(Ho):\n"
                                  "                        for ow in range(Wo):\n"
                                  "                            h, w = oh * sh + i - ph, ow * sw + j - pw\n"
                                  "                            inside",
                                  "row = (c * kh + i) * kw + j\n"
                                  "                    for oh in range(Ho):\n"
                                  "                        for ow in range(Wo):\n"
                                  "                            h, w = oh * sh + i - ph, ow * sw + j - pw\n"
                                  "                            1 / 0\n"
                                  "                            inside"), parts=["im2col"])
    assert report.results[0].message.startswith("ZeroDivisionError: division by zero "
                                                "(minivgg/kernels/naive.py:")


def test_a_package_that_does_not_import_scores_zero(tmp_path):
    root = reference_copy(tmp_path, "layers/linear.py", "class Flatten(Layer):", "class Flatten(Layer)")
    report = grade(root, parts=["linear", "maxpool"])
    assert report.score == 0
    assert all(r.message.startswith("the package does not import: SyntaxError") for r in report.results)


@pytest.mark.parametrize("source, line, problem", [
    (f"def f():\n    {BEGIN}\n    x = 1\n", 2, "is never closed"),
    (f"def f():\n    x = 1\n    {END}\n", 3, "without a"),
    (f"def f():\n    {BEGIN}\n    {BEGIN}\n    {END}\n    {END}\n", 3, "cannot nest"),
    (f"def f():\n    {BEGIN}\n    x = 1\n  {END}\n", 4, "indented differently"),
    (f"def g():\n    {BEGIN}\n    x = 1\n    {END}\n", 2, "belongs to no part"),
])
def test_marker_problems_are_errors_naming_file_and_line(source, line, problem):
    from minivgg.assignment.make import _part_in_file
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
    assert make_assignment(tmp_path, only=["linear"]) == ["linear"]
    naive = (tmp_path / "minivgg/kernels/naive.py").read_text()
    assert "NotImplementedError" not in naive and BEGIN not in naive
    assert "dx[n, c, h, w] += dout[n, c, oh, ow]" in naive
    assert "PART linear" in (tmp_path / "minivgg/layers/linear.py").read_text()
    report = grade(tmp_path)                                # the parts of assignment.json
    assert [r.part for r in report.results] == ["linear"] and report.score == 0
    assert grade(tmp_path, parts=["maxpool", "conv_direct"]).results[1].passed


def test_command_lines_and_json(tmp_path, capsys):
    assert make_main([str(tmp_path), "--only", "linear,maxpool"]) == 0
    assert make_main([str(tmp_path)]) == 2                                  # exists: no --force
    assert "pass --force" in capsys.readouterr().err
    assert make_main([str(tmp_path / "x"), "--only", "pooling"]) == 2
    assert "unknown part(s) pooling" in capsys.readouterr().err
    assert grade_main([str(tmp_path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["score"], report["max_score"]) == (0, 25)
    assert [p["part"] for p in report["parts"]] == ["maxpool", "linear"]
    assert report["parts"][0]["worst_error"] is None
    assert grade_main([str(tmp_path), "--parts", "lrn"]) == 0
    assert "lrn" in capsys.readouterr().out
    assert grade_main([str(tmp_path / "nowhere")]) == 2


NOTEBOOK = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    {"id": "c0", "cell_type": "markdown", "metadata": {}, "source": ["# ReLU by hand"]},
    {"id": "c1", "cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [],
     "source": ["values = [-2.0, 3.0]"]},
    {"id": "c2", "cell_type": "code", "metadata": {}, "execution_count": 2, "outputs": [], "source": [
        "def relu(xs):\n", f"    {BEGIN}\n", "    out = [max(0.0, x) for x in xs]\n",
        f"    {END}\n", "    return out"]},
    {"id": "c3", "cell_type": "code", "metadata": {}, "execution_count": 3, "outputs": [],
     "source": ["assert relu(values) == [0.0, 3.0]"]},
]}


def test_notebooks_run_up_to_the_first_part_to_implement(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    root = reference_copy(tmp_path / "src")
    (root / "notebooks").mkdir()
    (root / "notebooks/relu_by_hand.ipynb").write_text(json.dumps(NOTEBOOK))
    out = tmp_path / "out"
    assert make_assignment(out, root=root)[-1] == "relu_by_hand"
    nb = nbformat.read(out / "notebooks/relu_by_hand.ipynb", as_version=4)
    assert "out = None" in nb.cells[2].source and "max(0.0" not in nb.cells[2].source
    assert all(cell.get("outputs", []) == [] for cell in nb.cells)

    kernels = tmp_path / "kernels" / "assignment-test"        # a kernel of this interpreter
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "assignment test", "language": "python"}))
    manager = KernelManager(kernel_name="assignment-test",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels.parent)]))
    client = nbclient.NotebookClient(nb, km=manager, timeout=60, kernel_name="assignment-test")
    with pytest.raises(nbclient.exceptions.CellExecutionError) as failure:
        client.execute()
    assert "NotImplementedError" in str(failure.value)
    assert "relu_by_hand: implement relu (notebooks/relu_by_hand.ipynb[cell 2])" in str(failure.value)
    assert nb.cells[1].execution_count == 1 and nb.cells[3].execution_count == 3
