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
    assert tests.endswith("python -m pytest") and '".[dev]"' in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_the_python_example_runs():
    example = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    namespace = {}
    exec(compile(example.group(1), "README.md", "exec"), namespace)
    assert namespace["model"].num_params() == 138_357_544
    assert set(namespace["small"].grads) == set(namespace["small"].params)
