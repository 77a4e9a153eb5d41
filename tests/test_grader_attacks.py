"""A student who wants points without work, against the grader (issue 9's list of attacks).

Every attack starts from a fresh student copy in which one part (relu) is solved honestly; the
attack sits in the part im2col, or in the package's __init__. Each submission is graded in a
batch followed by a blank copy, and must earn exactly relu's points: nothing from the attack,
nothing lost from the honest part, and the blank copy after it still scores zero.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from minivgg.assignment import make_assignment
from minivgg.assignment.make import REFERENCE_ROOT
from minivgg.assignment.sandbox import Limits

grading = __import__("minivgg.assignment.grade", fromlist=["grade"])
PARTS = ["im2col", "relu"]
LIMITS = Limits(seconds=4, cpu=4, memory=512 << 20)
ATTACKED = 'raise NotImplementedError("im2col: implement im2col'


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """(a blank copy, a copy with relu solved): the starting points of every submission."""
    root = tmp_path_factory.mktemp("copies")
    make_assignment(root / "blank", only=["conv_direct", "im2col", "relu", "dropout"])
    shutil.copytree(root / "blank", root / "relu")
    shutil.copyfile(REFERENCE_ROOT / "minivgg/layers/activation.py",
                    root / "relu/minivgg/layers/activation.py")
    return root


def submission(copies, tmp_path, code=None, init=None):
    """The relu-solved copy with ``code`` in place of im2col's raise, ``init`` appended to the
    package's __init__.py."""
    sub = tmp_path / "attacker"
    shutil.copytree(copies / "relu", sub)
    if code is not None:
        path = sub / "minivgg/kernels/naive.py"
        source = path.read_text()
        assert source.count(ATTACKED) == 1
        indented = "\n".join("    " + line for line in code.strip("\n").split("\n"))
        path.write_text(source.replace("    " + ATTACKED, indented + "\n    " + ATTACKED))
    if init is not None:
        with open(sub / "minivgg/__init__.py", "a") as f:
            f.write("\n" + init + "\n")
    return sub


def spec_file(tmp_path, installed=REFERENCE_ROOT):
    """An instructor's assignment file for PARTS and the reference installed at ``installed``."""
    spec = tmp_path / "hw.assignment.json"
    spec.write_text(json.dumps({"parts": PARTS, "seed": None,
                                "reference_sha256": grading.reference_hash(installed)}))
    return spec


def grade_with_blank(copies, sub):
    start = time.monotonic()
    attacked, blank = grading.grade([sub, copies / "blank"], PARTS, limits=LIMITS)
    return attacked, blank, time.monotonic() - start


def assert_no_gain(copies, sub, budget=30):
    attacked, blank, seconds = grade_with_blank(copies, sub)
    points = {r.part: r.points for r in attacked.results}
    assert points == {"im2col": 0, "relu": 5}, str(attacked)
    assert blank.score == 0, str(blank)
    assert seconds < budget
    return attacked


ATTACKS = {
    # patch the grader, its checks and numpy in the process that imports the student's package
    "patch_grader_at_import": dict(init="""
import sys
for name, module in list(sys.modules.items()):
    if name.startswith("minivgg.assignment"):
        for attr in ("grade_part", "judge", "judge_check"):
            if hasattr(module, attr):
                setattr(module, attr, lambda *a, **k: (0.0, ""))
        if hasattr(module, "CHECKS"):
            module.CHECKS.clear()
import numpy
numpy.abs = lambda x, *a, **k: 0 * x
numpy.allclose = lambda *a, **k: True
"""),
    # copy the reference out of sys.modules, or find it on sys.path
    "steal_the_reference": dict(code="""
import sys, importlib, os
for name, module in list(sys.modules.items()):
    if name.endswith("kernels.naive") and module.__name__ != __name__:
        return module.im2col(x, kernel, stride, padding, out)
for entry in sys.path:
    if os.path.isfile(os.path.join(entry, "minivgg", "assignment", "checks.py")) \\
            and os.path.abspath(entry) != os.getcwd():
        raise SystemExit("found the reference at " + entry)
"""),
    # the grader computed the answer before calling: take it from the caller's frame
    "read_the_callers_frame": dict(code="""
import sys
frame = sys._getframe(1)
while frame is not None:
    for name in ("expected", "cols", "value", "reference"):
        if name in frame.f_locals and hasattr(frame.f_locals[name], "shape"):
            return frame.f_locals[name]
    frame = frame.f_back
"""),
    # a report that looks genuine, then leave with exit status 0
    "forged_report_and_exit": dict(code="""
import json, os, sys
print(json.dumps({"score": 130, "max_score": 130, "parts": []}))
print("total              130/130")
sys.stdout.flush()
os._exit(0)
"""),
    "sys_exit": dict(code="import sys\nsys.exit(0)"),
    "keyboard_interrupt": dict(code="raise KeyboardInterrupt"),
    "base_exception": dict(code="raise BaseException('points please')"),
    "sigkill_self": dict(code="import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
    "segfault": dict(code="import ctypes\nctypes.string_at(0)"),
    "infinite_loop": dict(code="while True:\n    pass"),
    "sleep": dict(code="import time\ntime.sleep(3600)"),
    "allocate_3_gib": dict(code="import numpy as np\nhog = np.ones(3 << 30, dtype=np.uint8)"),
    "deep_recursion": dict(code="""
import sys
sys.setrecursionlimit(10 ** 7)
def down(n):
    return down(n + 1) + 1
down(0)
"""),
    # a child that forks one that outlives it, trying to write the next submission's answers
    "leave_a_process_behind": dict(code="""
import os, time
if os.fork() == 0:
    os.setsid()
    time.sleep(30)
"""),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_an_attack_gains_nothing_and_harms_nothing(copies, tmp_path, attack):
    attacked = assert_no_gain(copies, submission(copies, tmp_path, **ATTACKS[attack]))
    message = attacked.results[0].message
    if attack in ("infinite_loop", "sleep"):
        assert message.startswith("the part's process timed out after 4 s"), message
    if attack == "forged_report_and_exit":
        assert "ended early" in message and "[printed: " in message and "\\n" in message


def test_a_tampered_assignment_json_is_ignored_and_flagged(copies, tmp_path):
    sub = submission(copies, tmp_path)
    (sub / "assignment.json").write_text(json.dumps({"parts": []}))
    attacked = assert_no_gain(copies, sub)
    assert attacked.max_score == 20
    assert any("lists other parts; ignored" in note for note in attacked.notes)


def test_a_symlinked_package_is_refused(copies, tmp_path):
    sub = tmp_path / "attacker"
    sub.mkdir()
    (sub / "minivgg").symlink_to(REFERENCE_ROOT / "minivgg")
    attacked, blank, _ = grade_with_blank(copies, sub)
    assert attacked.score == 0 and blank.score == 0
    assert "is a symbolic link" in attacked.results[0].message


def test_a_symlinked_file_inside_the_package_is_refused(copies, tmp_path):
    sub = submission(copies, tmp_path)
    target = sub / "minivgg/kernels/naive.py"
    target.unlink()
    target.symlink_to(REFERENCE_ROOT / "minivgg/kernels/naive.py")
    attacked, _, _ = grade_with_blank(copies, sub)
    assert attacked.score == 0 and "kernels/naive.py is a symbolic link" in attacked.results[0].message


def test_output_files_are_read_without_following_links(copies, tmp_path):
    """The child replaces its result with links to a secret and to a FIFO (which would block)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("the instructor's secret")
    code = f"""
import os, glob
out = glob.glob(os.path.join(os.environ["TMPDIR"], "..", "out"))[0]
for group in range(64):
    os.makedirs(os.path.join(out, f"g{{group}}"), exist_ok=True)
    for name in ("cols", "dx", "buffer"):
        link = os.path.join(out, f"g{{group}}", name + ".npy")
        if not os.path.exists(link):
            os.symlink({str(secret)!r}, link)
os.mkfifo(os.path.join(out, "result.json.fifo"))
os.symlink(os.path.join(out, "result.json.fifo"), os.path.join(out, "result.json"))
os._exit(0)
"""
    attacked = assert_no_gain(copies, submission(copies, tmp_path, code=code))
    assert "secret" not in str(attacked)


@pytest.mark.skipif(os.geteuid() != 0, reason="children drop to nobody only when the grader is root")
def test_children_run_unprivileged_and_cannot_write_the_reference(copies, tmp_path):
    code = f"""
import os
target = {str(REFERENCE_ROOT / "minivgg/assignment/checks.py")!r}
with open(target, "a") as f:
    f.write("\\nCHECKS.clear()\\n")
"""
    before = (REFERENCE_ROOT / "minivgg/assignment/checks.py").read_bytes()
    attacked = assert_no_gain(copies, submission(copies, tmp_path, code=code))
    message = attacked.results[0].message       # shut in its scratch folder, it cannot see it
    assert "FileNotFoundError" in message or "PermissionError" in message, message
    assert (REFERENCE_ROOT / "minivgg/assignment/checks.py").read_bytes() == before


def test_writing_into_the_installed_reference_stops_the_batch(copies, tmp_path, request):
    """Graded by an ordinary user on a kernel without Landlock, whose children keep the user's
    rights (the grader here is told so), with the grader installed in a copy the children can
    write, changing it is noticed right after that submission: an error, not a score."""
    # not under pytest's own temporary folder: a pytest starting elsewhere resets it to 0o700
    installed = Path(tempfile.mkdtemp(prefix="minivgg-installed-"))
    request.addfinalizer(lambda: shutil.rmtree(installed, ignore_errors=True))
    os.chmod(installed, 0o755)                                  # nobody may walk to it
    shutil.copytree(REFERENCE_ROOT / "minivgg", installed / "minivgg",
                    ignore=shutil.ignore_patterns("__pycache__"))
    os.chmod(installed / "minivgg/assignment", 0o777)
    os.chmod(installed / "minivgg/assignment/checks.py", 0o666)
    spec = spec_file(tmp_path, installed)
    code = f"""
with open({str(installed / "minivgg/assignment/checks.py")!r}, "a") as f:
    f.write("\\nCHECKS.clear()\\n")
"""
    sub = submission(copies, tmp_path, code=code)
    as_a_user = ("import sys; from minivgg.assignment import grade_main, sandbox; "
                 "sandbox._user = lambda: None; sandbox.landlock_abi = lambda: 0; "
                 "sys.exit(grade_main(sys.argv[1:]))")
    result = subprocess.run(
        [sys.executable, "-P", "-c", as_a_user, str(sub), str(copies / "blank"),
         "--timeout", "5", "--assignment", str(spec)], cwd=tmp_path, capture_output=True, text=True,
        env={"PYTHONPATH": str(installed), "PATH": os.environ["PATH"]})
    assert result.returncode == 3, result.stdout + result.stderr
    assert "the installed reference changed while grading" in result.stderr
    assert "blank" not in result.stdout


def test_grading_from_inside_a_submission_uses_the_installed_grader(copies, tmp_path):
    """The submission's own minivgg/__main__.py forges a report; the documented command
    (the console script, or ``python -P -m minivgg``) never imports it."""
    sub = submission(copies, tmp_path)
    (sub / "minivgg/__main__.py").write_text("print('total 130/130')\n")
    result = subprocess.run([sys.executable, "-P", "-m", "minivgg", "grade", ".", "--json",
                             "--assignment", str(spec_file(tmp_path))], cwd=sub,
                            capture_output=True, text=True,
                            env={"PYTHONPATH": str(REFERENCE_ROOT), "PATH": os.environ["PATH"]})
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)
    assert report["score"] == 5 and report["max_score"] == 20


def test_thirty_blank_submissions_in_one_batch(copies, tmp_path):
    subs = []
    for i in range(30):
        subs.append(tmp_path / f"s{i:02d}")
        shutil.copytree(copies / "blank", subs[-1])
    start = time.monotonic()
    reports = grading.grade(subs, ["im2col", "relu", "dropout"])
    seconds = time.monotonic() - start
    assert [r.score for r in reports] == [0] * 30
    assert seconds < 60
