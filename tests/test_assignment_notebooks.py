"""The notebooks of a student's copy: exercises where a notebook first needs a part, each followed
by a check cell that stops the notebook with the part's hint until the part passes.

Executed like tests/test_notebooks.py (a kernel of this interpreter, MINIVGG_FAST=1), but with the
student's copy first on the kernel's path. That the reference notebooks never call a part before
its check cell would come in a copy is tested in test_notebooks.py, from a record of the calls.
"""

import json
import shutil
import sys

import pytest

from minivgg.assignment import make_assignment
from minivgg.assignment.make import REFERENCE_ROOT, student_notebook
from minivgg.assignment.notebooks import EXERCISES, KEY, REQUIRES, unchecked_uses
from minivgg.assignment.parts import PARTS

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NAMES = [part.name for part in PARTS]
NOTEBOOKS = {path.name[:2]: path for path in (REFERENCE_ROOT / "notebooks").glob("*.ipynb")}


def test_every_cell_the_tables_name_is_in_its_notebook():
    """A notebook edited since the tables were made: make still works (it checks such a part right
    after the imports), but the table is stale."""
    named = [(where, cell, part) for part, (where, cell) in EXERCISES.items()]
    named += [(number, cell, parts) for number, cells in REQUIRES.items()
              for cell, parts in cells.items()]
    ids = {number: {c.get("id") for c in json.loads(path.read_text())["cells"]}
           for number, path in NOTEBOOKS.items()}
    stale = [f"notebook {number} has no cell {cell!r} (for {parts})"
             for number, cell, parts in named if cell not in ids[number]]
    assert not stale, "update EXERCISES / REQUIRES in minivgg/assignment/notebooks.py: " + \
        "; ".join(stale)


def own_parts(number):
    return [name for name, (where, _) in EXERCISES.items() if where == number]


def run_in_copy(copy, number, tmp_path):
    """Execute notebook ``number`` of the student's ``copy``: (executed notebook, the error that
    stopped it or None)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    kernels = tmp_path / "kernels"
    (kernels / "student").mkdir(parents=True, exist_ok=True)
    (kernels / "student" / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "student", "language": "python",
        "env": {"PYTHONPATH": str(copy), "MINIVGG_FAST": "1", "MPLBACKEND": "Agg",
                "PYTHONWARNINGS": "ignore", "NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                "OMP_NUM_THREADS": "1"}}))
    path = copy / "notebooks" / NOTEBOOKS[number].name
    nb = nbformat.read(path, as_version=4)
    manager = KernelManager(kernel_name="student",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    client = nbclient.NotebookClient(nb, km=manager, timeout=300, kernel_name="student",
                                     resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
        error = None
    except nbclient.exceptions.CellExecutionError as stopped:
        error = stopped
    finally:
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
    return nb, error


def stopping_cell(nb):
    """The cell whose output is an error (nbclient stops at the first), and the text it printed."""
    (cell,) = [c for c in nb.cells if c.cell_type == "code"
               and any(out.output_type == "error" for out in c.outputs)]
    return cell, "".join(out.get("text", "") for out in cell.outputs)


@pytest.mark.parametrize("number", sorted({where for where, _ in EXERCISES.values()}))
def test_a_notebook_runs_to_its_first_exercise_and_shows_the_hint_there(number, tmp_path):
    """A student who did the earlier notebooks (their parts solved in the copy) opens this one."""
    first = own_parts(number)[0]
    make_assignment(tmp_path / "hw", only=own_parts(number))
    nb, error = run_in_copy(tmp_path / "hw", number, tmp_path)
    assert error is not None and "PartNotDone" in str(error)
    cell, shown = stopping_cell(nb)
    assert cell.metadata[KEY] == [first], cell.source
    assert f"{first}" in shown and "FAILED" in shown and "not implemented yet" in shown, shown
    exercise = nb.cells[nb.cells.index(cell) - 1]
    assert exercise.cell_type == "markdown" and f"Your part: `{first}`" in exercise.source
    before = [c for c in nb.cells[:nb.cells.index(cell)] if c.cell_type == "code"]
    assert all(c.execution_count for c in before)          # every cell before it ran


def test_a_fresh_copy_runs_a_later_notebook_up_to_its_check_of_earlier_parts(tmp_path):
    make_assignment(tmp_path / "hw")
    nb, error = run_in_copy(tmp_path / "hw", "04", tmp_path)
    assert error is not None and "PartNotDone" in str(error)
    cell, shown = stopping_cell(nb)
    first_check = next(c for c in nb.cells if KEY in c.metadata)
    anchor = nb.cells[nb.cells.index(cell) + 1].id            # the cell that needs the parts
    assert cell is first_check and cell.metadata[KEY] == list(REQUIRES["04"][anchor])
    for part in cell.metadata[KEY]:
        assert f"not implemented yet ({part}: implement" in shown, shown
    before = [c for c in nb.cells[:nb.cells.index(cell)] if c.cell_type == "code"]
    assert len(before) >= 2 and all(c.execution_count for c in before)   # those cells ran


def test_a_passing_part_lets_the_notebook_run_on_to_the_end(tmp_path):
    make_assignment(tmp_path / "hw", only=["conv_direct", "im2col"])     # naive.py holds both
    for kernels in ("naive", "vectorized", "jit"):     # and the compiled im2col: 10 s, not 70
        shutil.copyfile(REFERENCE_ROOT / f"minivgg/kernels/{kernels}.py",
                        tmp_path / f"hw/minivgg/kernels/{kernels}.py")
    nb, error = run_in_copy(tmp_path / "hw", "01", tmp_path)
    assert error is None, error
    check = next(c for c in nb.cells if c.metadata.get(KEY) == ["conv_direct"])
    shown = "".join(out.get("text", "") for out in check.outputs)
    assert "conv_direct         10/10    passed" in shown and "all passed" in shown, shown


def test_a_copy_notebook_holds_an_exercise_and_a_check_per_assigned_part_only():
    nb, _ = student_notebook(NOTEBOOKS["02"], ["linear", "maxpool"])
    checks = [cell["metadata"][KEY] for cell in nb["cells"] if KEY in cell["metadata"]]
    assert checks == [["linear"], ["maxpool"]]
    assert "%autoreload 2" in "".join(next(c for c in nb["cells"] if KEY in c["metadata"])["source"])
    nb, _ = student_notebook(NOTEBOOKS["02"], ["im2col", "lrn"])      # im2col from notebook 01
    assert [cell["metadata"][KEY] for cell in nb["cells"] if KEY in cell["metadata"]] == [
        ["im2col"], ["lrn"]]


def test_a_part_used_before_its_check_is_found():
    """What test_notebooks.py asserts can fail: Linear called in the cell before its exercise."""
    nb, _ = student_notebook(NOTEBOOKS["02"], NAMES)
    cells = nb["cells"]
    exercise = next(i for i, c in enumerate(cells) if c["metadata"].get(KEY) == ["linear"])
    before = next(c["id"] for c in cells[:exercise][::-1] if c["cell_type"] == "code")
    problems = unchecked_uses(nb, {"layers/linear.py:Linear.forward": before}, NAMES)
    assert problems == [f"cell {before} calls layers/linear.py:Linear.forward (part linear) "
                        f"before any cell checks linear"]
    # with only im2col_numpy assigned, naive.im2col runs the student's im2col_numpy: its
    # exercise moves up to im2col's place
    nb01, _ = student_notebook(NOTEBOOKS["01"], ["im2col_numpy"])
    assert unchecked_uses(nb01, {"kernels/naive.py:im2col": EXERCISES["im2col"][1]},
                          ["im2col_numpy"]) == []
    assert unchecked_uses(nb01, {"kernels/naive.py:im2col": "c05"}, ["im2col_numpy"]) == [
        "cell c05 calls kernels/naive.py:im2col (part im2col_numpy) before any cell checks "
        "im2col_numpy"]


def test_a_check_cell_run_against_the_reference_says_to_install_the_copy():
    from minivgg.assignment.selfcheck import PartNotDone, notebook_check
    with pytest.raises(PartNotDone, match="not a student's copy: install yours"):
        notebook_check("relu")
