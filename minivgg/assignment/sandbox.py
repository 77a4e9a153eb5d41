"""The grader's side of the student's process: scratch copies, the fork server, limits, safe reads.

:class:`Sandbox` starts runner.py once per grading run, as ``python -I -S`` (isolated: no
PYTHONPATH, no current folder, no site-packages) with a site directory that holds only NumPy, and
asks it for one child per part. Each part gets a fresh io directory: ``in/`` (the grader's input
arrays and task.json), ``out/`` (the only place the child may write, with its HOME and TMPDIR),
``output.txt`` (its stdout and stderr). When the grader runs as root, the children are shut in the
scratch folder (chroot) and run as ``nobody``: they cannot read the installed reference or
anything else outside it, nor write the scratch copy or a folder the next submission could read.
Under an ordinary user they confine themselves likewise with Landlock, where the kernel has it.

Everything the child left is read back without trusting it: no symbolic links or special files
are followed, sizes are capped, arrays are loaded with ``allow_pickle=False`` and must hold
numbers. A child that outlives its wall-clock limit is killed with its process group.
"""

import json
import os
import pwd
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .runner import NETWORK_ABI, landlock_abi, seccomp_arch

RUNNER = Path(__file__).with_name("runner.py")
PACKAGE = "minivgg"
UNPRIVILEGED = "nobody"
MAX_FILES, MAX_BYTES = 400, 20 << 20           # a submission's package: files and total size
MAX_DEPTH = 12                                 # and folders in folders (os.walk recurses)
MAX_ARRAY_BYTES = 64 << 20                     # one output array
MAX_RESULT_BYTES = 4 << 20                     # the child's result.json
OUTPUT_SHOWN = 300                             # characters of the child's printed output shown
# The library's other convolutions are complete in a student's copy (its notebooks' networks run
# on them): one of stride 1 and a strided slice is a strided convolution. In the scratch copy the
# grader runs they are stand-ins that refuse, so a convolution part is not done by calling them:
# the layers' classes, and the Winograd kernels' module (3x3 blocks of any kernel, summed, earned
# conv_direct 10/10), whose every name refuses.
STAND_INS = {"conv/direct.py": "Direct", "conv/winograd.py": "Winograd",
             "kernels/winograd.py": None}
STAND_IN_MODULE = '''"""The grader's stand-in for the library's Winograd kernels."""

MESSAGE = ("the library's own convolution ({file}) does not run while grading: the convolution "
           "parts are written, not called")


def __getattr__(name):
    if name.startswith("__"):                   # what the import machinery asks of any module
        raise AttributeError(name)
    raise RuntimeError(MESSAGE)
'''
STAND_IN = '''"""The grader's stand-in for the library's {name} convolution."""

MESSAGE = ("the library's own convolution ({file}) does not run while grading: the convolution "
           "parts are written, not called")


class {name}:
    def __init__(self, *args, **kwargs):
        raise RuntimeError(MESSAGE)

    @staticmethod
    def footprint(*args, **kwargs):
        raise RuntimeError(MESSAGE)
'''


# The least a part's child may be given (``minivgg grade`` refuses less, naming the option): the
# reference's own solutions, graded as a student's, lose dropout below 8 MiB beyond the server's
# (its 200 x 500 arrays; every other part passed at 1 MiB), and a student's code may copy an array
# a few times more than the reference does: 4 times that. Each part costs about 30 ms of CPU, but
# a loaded machine stretches the wall clock: 1 s.
MIN_MEMORY, MIN_SECONDS = 32 << 20, 1.0


@dataclass
class Limits:
    """Per part: wall-clock and CPU seconds, address space beyond the server's own, file size.
    Less than MIN_MEMORY or MIN_SECONDS is a ValueError naming ``grade``'s option."""
    seconds: float = 30.0
    cpu: int = 30
    memory: int = 1 << 30
    fsize: int = 256 << 20

    def __post_init__(self):
        for option, value, least, unit in (("--memory", self.memory / (1 << 20),
                                            MIN_MEMORY >> 20, "MiB"),
                                           ("--timeout", self.seconds, MIN_SECONDS, "s")):
            if value < least:
                raise ValueError(f"{option} {value:g}: a part's process needs at least {least:g} "
                                 f"{unit} (below that even the reference's own solutions fail); "
                                 f"give {option} {least:g} or more")


@dataclass
class Outcome:
    """How a part's child ended, and what it left (read back safely)."""
    status: str                 # "finished", "timed out", "killed by signal N", "exit status N"
    seconds: float              # wall-clock, request to exit
    cpu: float                  # the child's CPU seconds
    results: list               # the runner's per-group entries (possibly fewer than asked)
    output: str                 # its printed output, escaped and capped
    out_dir: Path

    def array(self, group, name):
        """The array the child saved as ``name`` in ``group``, or None if absent or not numbers."""
        data = read_safely(self.out_dir / f"g{group}" / f"{name}.npy", MAX_ARRAY_BYTES)
        if data is None:
            return None
        import io
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except Exception:                   # a malformed file is the student's wrong answer
            return None
        return array if isinstance(array, np.ndarray) and array.dtype.kind in "biuf" else None


def read_safely(path, cap):
    """A regular file's bytes (at most ``cap``), never following a link; None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > cap:
            return None
        chunks, total = [], 0
        while total <= cap:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks) if total <= cap else None
    finally:
        os.close(fd)


def escape(text, cap=OUTPUT_SHOWN):
    """Printable text only (anything else as \\xNN), cut to ``cap`` characters."""
    shown = text[:cap].encode("unicode_escape").decode("ascii")
    return shown + (" ..." if len(text) > cap else "")


def copy_submission(package, to):
    """Copy the regular .py files of a student's package (the library's other convolutions as
    stand-ins, STAND_INS); a ValueError for links or excess."""
    package = Path(package)
    if package.is_symlink():
        raise ValueError(f"{package.name}/ is a symbolic link; submit the files themselves")
    files, total = [], 0
    for directory, dirs, names in os.walk(package):
        if dirs and len(Path(directory).relative_to(package).parts) >= MAX_DEPTH:
            raise ValueError(f"{package.name}/ has folders nested more than {MAX_DEPTH} deep")
        for name in dirs + names:
            if (Path(directory) / name).is_symlink():
                raise ValueError(f"{(Path(directory) / name).relative_to(package.parent)} is a "
                                 f"symbolic link; submit the files themselves")
        dirs[:] = [d for d in dirs if d not in ("__pycache__", ".ipynb_checkpoints")]
        for name in names:
            path = Path(directory) / name
            if name.endswith(".py") and path.is_file():
                files.append(path)
                total += path.stat().st_size
    if len(files) > MAX_FILES or total > MAX_BYTES:
        raise ValueError(f"the package holds {len(files)} files, {total} bytes: more than "
                         f"{MAX_FILES} files or {MAX_BYTES} bytes")
    for path in files:
        target = Path(to) / PACKAGE / path.relative_to(package)
        target.parent.mkdir(parents=True, exist_ok=True)
        relative = path.relative_to(package).as_posix()
        if relative in STAND_INS:
            target.write_text((STAND_IN if STAND_INS[relative] else STAND_IN_MODULE).format(
                name=STAND_INS[relative], file=relative))
        else:
            shutil.copyfile(path, target)
    for path in [Path(to), *Path(to).rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def _user():
    """(uid, gid) the children drop to when the grader is root, else None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(UNPRIVILEGED)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _jsonable(spec, group):
    """The steps with input names made unique to their group."""
    if isinstance(spec, list):
        return [_jsonable(v, group) for v in spec]
    if isinstance(spec, dict):
        if set(spec) == {"in"}:
            return {"in": f"g{group}_{spec['in']}"}
        return {k: _jsonable(v, group) for k, v in spec.items()}
    return spec


class Sandbox:
    """One grading run's scratch directory and fork server; use as a context manager."""

    def __init__(self, limits=None):
        self.limits = limits or Limits()
        self.user = _user()
        # how the children are kept from the grader's files: "jail" (root: chroot, nobody),
        # "landlock" (an ordinary user on a kernel that has it), or None (they have its rights)
        self.abi = landlock_abi()
        self.landlock = self.abi > 0
        self.confined = "jail" if self.user else "landlock" if self.landlock else None
        # the children's network is shut: a socket filter where there is one for this machine,
        # else TCP alone from Landlock ABI 4 (root too)
        self.network = "filter" if seccomp_arch() else "tcp" if self.abi >= NETWORK_ABI else None
        self.root = Path(tempfile.mkdtemp(prefix="minivgg-grade-"))
        os.chmod(self.root, 0o711)             # children may pass through, not list it
        site = self.root / "site"              # NumPy alone: the reference is not importable
        site.mkdir()
        numpy_dir = Path(np.__file__).parent
        for name in ("numpy", "numpy.libs"):
            if (numpy_dir.parent / name).exists():
                (site / name).symlink_to(numpy_dir.parent / name)
        os.chmod(site, 0o755)
        self.site = site
        self.server = None
        self.count = 0
        self.tasks = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _start(self):
        env = {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "LANG": "C.UTF-8"}
        self.server = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", RUNNER.read_text(), str(self.site)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=self.root, env=env, start_new_session=True)

    def close(self):
        if self.server is not None:
            self.server.stdin.close()
            try:
                self.server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
            self.server.stdout.close()
            self.server = None
        shutil.rmtree(self.root, ignore_errors=True)

    def new_submission(self, package):
        """A scratch copy of a student's package (read-only to the children); its directory."""
        self.count += 1
        work = self.root / f"submission-{self.count}" / "work"
        work.mkdir(parents=True)
        os.chmod(work.parent, 0o711)
        copy_submission(package, work)
        return work

    def forget(self, work):
        """Delete a submission's scratch copy and its parts' directories."""
        if work is not None:
            shutil.rmtree(work.parent, ignore_errors=True)

    def _reply(self, deadline):
        """The fork server's next line; None when ``deadline`` (a monotonic time) passed first."""
        stream = self.server.stdout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            ready, _, _ = select.select([stream], [], [], remaining)
            if ready:
                line = stream.readline()
                if not line:
                    raise RuntimeError("the grader's fork server stopped")
                return json.loads(line)

    def _task(self, cases):
        """The directory holding the task of ``cases`` (task.json and in/*.npy), written once per
        grading run and shared, read-only, by every submission's child."""
        key = tuple(map(id, cases))
        if key not in self.tasks:
            groups, inputs = task(cases)
            directory = Path(tempfile.mkdtemp(prefix="task-", dir=self.root))
            (directory / "in").mkdir()
            for name, array in inputs.items():
                np.save(directory / "in" / f"{name}.npy", array, allow_pickle=False)
            (directory / "task.json").write_text(json.dumps({"groups": groups}))
            for path in [directory, *directory.rglob("*")]:
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
            self.tasks[key] = (cases, directory)      # (cases kept alive: their ids stay theirs)
        return self.tasks[key][1]

    def run(self, work, cases, seconds=None):
        """Run the steps of ``cases`` (a list of checks.Case) in a child in ``work``; an Outcome."""
        if self.server is None or self.server.poll() is not None:
            self._start()
        task_dir = self._task(cases)
        io = Path(tempfile.mkdtemp(prefix="part-", dir=work.parent))
        os.chmod(io, 0o711)
        writable = [io / "out", io / "home", io / "tmp"]
        for path in writable:
            path.mkdir(mode=0o700)
            if self.user:
                os.chown(path, *self.user)
        limits = self.limits
        request = {"work": str(work), "task": str(task_dir), "io": str(io), "home": str(io / "home"),
                   "tmp": str(io / "tmp"), "cpu": limits.cpu, "memory": limits.memory,
                   "fsize": limits.fsize, "uid": self.user and self.user[0],
                   "gid": self.user and self.user[1], "jail": str(self.root),
                   "landlock": self.landlock}
        start = time.monotonic()
        self.server.stdin.write(json.dumps(request).encode() + b"\n")
        self.server.stdin.flush()
        pid = self._reply(None)["pid"]
        reply = self._reply(start + (seconds or limits.seconds))
        timed_out = reply is None
        if timed_out:
            for kill in (os.killpg, os.kill):         # the group; the child if not yet its leader
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            reply = self._reply(time.monotonic() + 30)
            if reply is None:
                raise RuntimeError(f"the child {pid} could not be stopped")
        elapsed = time.monotonic() - start
        code = reply["status"]
        if timed_out:
            status = f"timed out after {seconds or limits.seconds:g} s"
        elif os.WIFSIGNALED(code):
            number = os.WTERMSIG(code)
            status = f"killed by signal {number} ({signal.Signals(number).name})" \
                if number in signal.Signals._value2member_map_ else f"killed by signal {number}"
            if number == signal.SIGXCPU:
                status += f": over the CPU limit of {limits.cpu} s"
        elif os.WEXITSTATUS(code) != 0:
            status = f"exit status {os.WEXITSTATUS(code)}"
        else:
            status = "finished"
        raw = read_safely(io / "out" / "result.json", MAX_RESULT_BYTES)
        try:
            results = json.loads(raw) if raw else []
        except (ValueError, RecursionError):          # RecursionError: a nest of 4 MiB of [[[
            results = []
        results = [r for r in results if isinstance(r, dict) and type(r.get("group")) is int
                   and isinstance(r.get("saved", []), list)] if isinstance(results, list) else []
        printed = (read_safely(io / "output.txt", 1 << 20) or b"").decode("utf-8", "replace")
        return Outcome(status, elapsed, float(reply.get("cpu", 0.0)), results, escape(printed),
                       io / "out")


def task(cases):
    """The groups (steps with unique input names) and inputs of a list of Cases."""
    groups, inputs = [], {}
    for index, case in enumerate(cases):
        groups.append(_jsonable(case.steps, index))
        inputs.update({f"g{index}_{name}": array for name, array in case.inputs.items()})
    return groups, inputs
