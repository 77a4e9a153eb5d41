"""The notebooks run top to bottom (fast settings), and are committed without outputs.

Each notebook runs in a fresh kernel of *this* interpreter (a kernel spec written to a temporary
folder, so a system-wide "python3" kernel of another Python cannot be picked up by mistake), with
MINIVGG_FAST=1 (small data, few epochs) and MPLBACKEND=Agg. Any error in any cell fails the test.

The kernels run single-threaded (NUMBA_NUM_THREADS, OPENBLAS_NUM_THREADS, OMP_NUM_THREADS = 1):
on a shared, oversubscribed machine the threaded kernels slowed the training notebook tenfold
(05 took 610 s instead of 57 s at a load of 18 on 2 cores), and these tests are about the
notebooks running, not about speed.

Run one: ``python -m pytest tests/test_notebooks.py -k 01``. Skipped when nbclient, nbformat,
ipykernel or matplotlib are missing (they are in the ``dev`` extra).
"""

import json
import sys
import time
from pathlib import Path

import pytest

from minivgg.assignment.make import student_notebook
from minivgg.assignment.notebooks import source_key, tracer_source, unchecked_uses
from minivgg.assignment.parts import PARTS

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
KERNEL = "minivgg-test"
TIMEOUT = 1200         # seconds per cell; the longest, notebook 07's live `reproduce --quick`,
                       # takes ~1.5-2 min on a quiet 2-core machine, 10 min at a load average of ~12


@pytest.fixture(scope="module")
def kernel_spec_manager(tmp_path_factory):
    from jupyter_client.kernelspec import KernelSpecManager

    folder = tmp_path_factory.mktemp("kernels")
    (folder / KERNEL).mkdir()
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"minivgg tests ({sys.executable})", "language": "python",
            "env": {"MINIVGG_FAST": "1", "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore",
                    "NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}}
    (folder / KERNEL / "kernel.json").write_text(json.dumps(spec))
    return KernelSpecManager(kernel_dirs=[str(folder)])


def run_notebook(path, kernel_spec_manager):
    """Execute the notebook at ``path`` in its own folder; return (executed notebook, seconds,
    the id of the first cell calling each function of an assignment part's code: a student's
    copy must check the part before it, minivgg/assignment/notebooks.py)."""
    from jupyter_client.manager import KernelManager

    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(tracer_source()))
    nb.cells.append(nbformat.v4.new_code_cell("import json\nprint(json.dumps(_part_uses))"))
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=kernel_spec_manager)
    client = nbclient.NotebookClient(nb, km=km, timeout=TIMEOUT, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        if km.has_kernel:               # a client given its own manager leaves the kernel running
            km.shutdown_kernel(now=True)
    seconds = time.perf_counter() - start
    uses = json.loads(nb.cells.pop().outputs[0]["text"])
    nb.cells.pop(0)
    ids = {source_key(cell.source): cell.id for cell in nb.cells if cell.cell_type == "code"}
    return nb, seconds, {function: ids.get(key) for function, key in uses.items()}


def test_there_are_notebooks():
    assert NOTEBOOKS, "expected the numbered notebooks in notebooks/"
    assert all(p.name[:2].isdigit() for p in NOTEBOOKS), [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {k} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {k} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_opens_with_what_you_learn_and_the_paper_section(path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "learn" in first.source.lower() and "Sec." in first.source, \
        f"{path.name} must open with what the reader will learn and the paper section it follows"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom(path, kernel_spec_manager):
    nb, seconds, uses = run_notebook(path, kernel_spec_manager)
    print(f"{path.name}: {seconds:.1f} s")
    text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.outputs if out.output_type == "stream")
    # progress output must be line by line: a bar redrawn with \r leaves hundreds of copies in a
    # saved notebook or a CI log
    assert text.count("\r") <= 5, f"{path.name} prints carriage-return progress bars"
    images = sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
                 for out in cell.outputs)
    assert images >= 1, f"{path.name} drew no figure"
    # a student's copy checks every part before the notebook first calls its code, whether the
    # copy assigns all parts or one
    names = [part.name for part in PARTS]
    assert uses, f"{path.name} calls no assignment part's code: is the tracer working?"
    for assigned in [names, *([name] for name in names)]:
        student, _ = student_notebook(path, assigned)
        assert unchecked_uses(student, uses, assigned) == [], \
            f"{path.name}, parts {assigned}: a student's copy would call a part before checking " \
            f"it; update EXERCISES / REQUIRES in minivgg/assignment/notebooks.py"
