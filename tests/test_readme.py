"""README.md's promises: exactly two commands, and CI runs the test command verbatim."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_commands():
    return re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_two_commands_main_job_and_tests():
    commands = readme_commands()
    assert len(commands) == 2, commands
    main_job, tests = commands
    assert main_job.endswith("minivgg train") and "pip install" in main_job
    assert tests.endswith("python -m pytest") and '".[dev,mpi]"' in tests  # mpi: CI runs
    # tests/test_distributed.py's MPI runs


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_the_python_example_runs():
    example = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    namespace = {}
    exec(compile(example.group(1), "README.md", "exec"), namespace)
    assert namespace["model"].num_params() == 138_357_544
    assert set(namespace["small"].grads) == set(namespace["small"].params)


def test_the_your_own_data_example_runs(tmp_path, monkeypatch):
    """The README's second Python example, on a small image folder written here, one epoch."""
    from PIL import Image

    from minivgg.data import synthetic_shapes
    from minivgg.train import BEST, load_checkpoint
    shapes = synthetic_shapes(30, 36, seed=0)
    for i, (image, label) in enumerate(zip(shapes.images, shapes.labels)):
        folder = tmp_path / "my_photos" / shapes.classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.png")
    code = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)[1]
    assert "RECIPE.replace(epochs=20)" in code
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("epochs=20", "epochs=1, width=1 / 16, fc_width=8"), "README.md",
                 "exec"), {})
    assert load_checkpoint(tmp_path / "runs" / "mine" / BEST)[1]["epoch"] == 1
