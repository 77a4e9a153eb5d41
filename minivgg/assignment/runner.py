"""The child side of the grader: runs a student's code on inputs the grader chose, and nothing else.

This file is standalone on purpose: the standard library and NumPy only, never the reference
minivgg. The grader (minivgg/assignment/sandbox.py) starts it as ``python -I -S -c <this file's
text> SITE``, where SITE is a directory holding only NumPy, and it becomes a *fork server*: it
imports NumPy once, then for each part the grader asks for it forks a child that

1. starts its own process group and session (the grader kills the whole group afterwards),
2. sends its stdout and stderr to a file, closes every other file descriptor,
3. sets its limits (address space, CPU seconds, file size, no core, no new processes),
4. when the grader runs as root, shuts itself in the grader's scratch folder (chroot: the
   reference, other students' files, /tmp and /proc are out of sight) and drops to an
   unprivileged user; and, where the kernel has Landlock, confines itself to reading its copy,
   its inputs and NumPy, writing its own folders, TCP and signalling no process outside (for a
   grader that is not root, this keeps the user's other files and processes out of reach); then
   a seccomp filter refuses it every socket() (no network, no service of the machine) and what
   would outlive it outside a folder (System V and POSIX IPC, key rings),
5. moves into the scratch copy of the submission with its own HOME and TMPDIR and a sys.path of
   that copy, SITE and the standard library (no current folder, no PYTHONPATH),
6. runs the task's groups of steps (import a student module, call, set an item, save a result),
   saving what a group asks for as .npy files (``allow_pickle=False``: numbers only) and each
   group's exception as text showing only frames from the student's files.

The fork server itself never runs student code; it only reports each child's pid and exit status,
after killing whatever the child left behind (it is a subreaper: orphans come back to it).
Whatever the child writes is untrusted: the grader validates it and computes every score itself.
"""

import ctypes
import importlib
import importlib.util
import json
import os
import resource
import stat
import struct
import sys
import traceback
import types

PACKAGE = "minivgg"
MESSAGE_CAP = 2000                  # characters of an exception's text kept
FRAMES_CAP = 8                      # innermost student frames kept
# What a student's code may import besides NumPy and its own package; imported here, before the
# child shuts itself in a folder without the standard library (or drops to a user who may not be
# able to read its files).
PRELOAD = ("abc", "collections", "contextlib", "copy", "dataclasses", "enum", "functools",
           "itertools", "math", "numbers", "operator", "random", "re", "string", "textwrap",
           "typing", "warnings", "numpy.lib.stride_tricks", "numpy.linalg", "numpy.random")


def _student_frames(error, root):
    """The traceback of ``error`` cut to frames in files under ``root``, paths relative to it."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)    # (not "<frozen ...>")
              if os.path.isabs(f.filename) and f.filename.startswith(root + os.sep)]
    return [(os.path.relpath(os.path.abspath(f.filename), root), f.lineno, f.name, f.line or "")
            for f in frames[-FRAMES_CAP:]]


def _describe(error, root):
    text = str(error)
    if isinstance(error, SyntaxError) and error.filename:       # the place is the student's file
        text = f"{error.msg} ({os.path.relpath(os.path.abspath(error.filename), root)}:{error.lineno})"
    return {"type": type(error).__name__, "message": text[:MESSAGE_CAP],
            "frames": _student_frames(error, root)}


def _namespace_packages(root, depth):
    """Make minivgg (and, with depth > 1, its sub-packages) an empty package: one module then
    imports without the __init__ files above it, which import the whole library, broken files
    and all."""
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    for directory, _, files in os.walk(os.path.join(root, PACKAGE)):
        name = os.path.relpath(directory, root).replace(os.sep, ".")
        if "__init__.py" in files and name.count(".") < depth:
            module = types.ModuleType(name)
            module.__path__, module.__package__ = [directory], name
            sys.modules[name] = module


def import_student(relative, root):
    """The student's ``minivgg.<relative>``, without the package's own __init__ (which imports
    every module); if a sub-package's __init__ fails (a broken sibling file), without that too."""
    name = f"{PACKAGE}.{relative}"
    if PACKAGE not in sys.modules:
        _namespace_packages(root, 1)
    try:
        return importlib.import_module(name)
    except Exception:
        _namespace_packages(root, 2)
    return importlib.import_module(name)


def refuse(message):
    """A kernel the layer must not call: it raises RuntimeError(message)."""
    def kernel(*args, **kwargs):
        raise RuntimeError(message)
    return kernel


def oracle_kernels(tables, np):
    """im2col and col2im that work only for the geometries the grader sent: ``tables[key]`` maps
    each (row, column) of cols to a flat index into one image, -1 where the window covers padding.
    Layer parts are graded with these, so an unfinished im2col does not cost Conv2d its points."""
    def index(shape, kernel, stride, padding):
        key = "x".join(str(int(v)) for v in (*shape, *kernel, *stride, *padding))
        if key not in tables:
            raise ValueError(f"the grader's im2col has no geometry {key}")
        return tables[key]

    def im2col(x, kernel, stride, padding, out=None):
        rows = index(x.shape[1:], kernel, stride, padding)
        flat = np.concatenate([x.reshape(len(x), -1), np.zeros((len(x), 1), x.dtype)], axis=1)
        cols = flat[:, rows]
        if out is None:
            return cols
        out[...] = cols
        return out

    def col2im(cols, x_shape, kernel, stride, padding, out=None):
        rows = index(x_shape[1:], kernel, stride, padding)
        flat = np.zeros((x_shape[0], int(np.prod(x_shape[1:])) + 1), cols.dtype)
        for n in range(x_shape[0]):
            np.add.at(flat[n], rows, cols[n])
        dx = flat[:, :-1].reshape(x_shape)
        if out is None:
            return dx
        out[...] = dx
        return out
    return im2col, col2im


class Group:
    """One group of steps with its own names: ``env["layer"]`` after a "new" step."""

    def __init__(self, root, inputs, out, np):
        self.root, self.inputs, self.out, self.np = root, inputs, out, np
        self.env, self.saved = {}, []

    def value(self, spec):
        if isinstance(spec, list):
            return [self.value(v) for v in spec]
        if not isinstance(spec, dict):
            return spec
        (kind, arg), = spec.items()
        if kind == "in":
            return self.np.load(os.path.join(self.inputs, arg + ".npy"), allow_pickle=False)
        if kind == "tuple":
            return tuple(self.value(v) for v in arg)
        if kind == "zeros":
            return self.np.zeros(arg[0], dtype=arg[1])
        if kind == "var":
            return self.resolve(arg)
        if kind == "dict":
            return {k: self.value(v) for k, v in arg.items()}
        raise ValueError(f"unknown value {kind}")

    def resolve(self, path):
        """``"layer.params"`` or ``["model", "params", "fc.weight"]``: a name of the group, then
        attributes or keys."""
        first, *rest = path.split(".") if isinstance(path, str) else path
        value = self.env[first]
        for name in rest:
            value = value[name] if isinstance(value, dict) else getattr(value, name)
        return value

    def save(self, name, value):
        np = self.np
        if isinstance(value, tuple):
            for i, item in enumerate(value):
                self.save(f"{name}.{i}", item)
            return
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"returned {type(value).__name__}, not numbers")
        np.save(os.path.join(self.out, name + ".npy"), array, allow_pickle=False)
        self.saved.append(name)

    def run(self, steps):
        for step in steps:
            op, *args = step
            if op == "import":
                self.env[args[0]] = import_student(args[1], self.root)
            elif op == "call":
                out, target, call_args, kwargs = args
                function = self.resolve(target)
                self.env[out] = function(*self.value(call_args),
                                         **{k: self.value(v) for k, v in kwargs.items()})
            elif op == "setitem":                          # target[...] = value
                self.resolve(args[0])[...] = self.value(args[1])
            elif op == "namespace":                        # an object with these attributes
                self.env[args[0]] = types.SimpleNamespace(**self.value({"dict": args[1]}))
            elif op == "empty":     # a buffer as np.empty gives it, NaN so what is unwritten shows
                array = self.np.full(args[1], self.np.nan, dtype=args[2])
                self.env[args[0]] = array.transpose(args[3]) if len(args) > 3 else array
            elif op == "setattr":
                setattr(self.resolve(args[0]), args[1], self.value(args[2]))
            elif op == "save":
                self.save(args[0], self.value(args[1]))
            elif op == "oracle":                           # the grader's im2col for a layer part
                tables = {k: self.value(v) for k, v in args[1].items()}
                im2col, col2im = oracle_kernels(tables, self.np)
                for module in args[0]:
                    patched = import_student(module, self.root)
                    patched.im2col, patched.col2im = im2col, col2im
                for module, message in args[2].items():    # another backend's: must not be called
                    patched = import_student(module, self.root)
                    patched.im2col = patched.col2im = refuse(message)
            else:
                raise ValueError(f"unknown step {op}")


def run_task(task_dir, io, root):
    """Run task_dir/task.json's groups on the inputs in task_dir/in; io/out/result.json records
    each group's saved names or error."""
    import numpy as np
    with open(os.path.join(task_dir, "task.json")) as f:
        task = json.load(f)
    out, results = os.path.join(io, "out"), []
    for index, steps in enumerate(task["groups"]):
        group = Group(root, os.path.join(task_dir, "in"), os.path.join(out, f"g{index}"), np)
        os.mkdir(group.out)
        entry = {"group": index}
        try:
            group.run(steps)
        except BaseException as error:          # SystemExit, KeyboardInterrupt too: one group's
            entry["error"] = _describe(error, root)
        entry["saved"] = group.saved
        results.append(entry)
        with open(os.path.join(out, "result.json"), "w") as f:   # after each group: a crash
            json.dump(results, f)                                # later keeps the ones before


def _limit(which, value):
    resource.setrlimit(which, (value, value))


def _memory_in_use():
    """This process's address space in bytes, None where /proc cannot say (not Linux: macOS runs
    the self-check with no memory limit)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# Landlock's system calls (the same number on every architecture) and rights (linux/landlock.h)
CREATE_RULESET, ADD_RULE, RESTRICT_SELF, RULE_PATH_BENEATH, NO_NEW_PRIVS = 444, 445, 446, 1, 38
SUBREAPER, SET_SECCOMP, SECCOMP_FILTER = 36, 22, 2   # prctl(PR_SET_CHILD_SUBREAPER, ...)
READ = 1 | 4 | 8                      # execute, read a file, read a directory
FILE_RIGHTS = 1 | 2 | 4 | 1 << 14 | 1 << 15   # the rights a rule on a file (not a folder) may hold
SCOPED = 1 | 2                        # no abstract unix sockets or signals out of the domain (ABI 6)
NETWORK, NETWORK_ABI = 1 | 2, 4       # TCP bind and connect, every port refused (from ABI 4)


def landlock_abi():
    """The kernel's Landlock version, 0 if none (the grader asks before it starts children).
    Only Linux numbers its calls so: elsewhere (macOS) call 444 is another call."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        return max(0, ctypes.CDLL(None).syscall(CREATE_RULESET, None, ctypes.c_size_t(0), 1))
    except (OSError, AttributeError):
        return 0


# A seccomp filter (Linux 3.5, containers included) refuses, with EACCES, what Landlock and the
# jail leave open: socket() of any family (Landlock's TCP rules need 6.7 and leave UDP and Unix
# sockets), io_uring (which can open sockets past the filter), and what outlives a process outside
# any folder: System V shared memory, semaphores and message queues, POSIX message queues and the
# kernel's key rings (one submission's code left there for the next earned it 15/15).
# Per machine: the audit arch and the numbers of those calls.
SECCOMP_ARCHES = {
    "x86_64": (0xC000003E, (41, 425, 29, 30, 31, *range(64, 72), 220, *range(240, 246), 248, 249,
                            250)),
    "aarch64": (0xC00000B7, (198, 425, *range(180, 198), 217, 218, 219)),
}
EACCES = 13
LD, JEQ, JGE, RET = 0x20, 0x15, 0x35, 0x06          # BPF: load word, jump if == / >=, return
ALLOW, DENY = 0x7FFF0000, 0x00050000 | EACCES       # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO


def seccomp_arch():
    """(audit arch, the calls refused) of this machine, None where there is no filter for it: not
    Linux (an Intel Mac is "x86_64" too, without prctl), or a 32-bit Python on a 64-bit kernel
    (its calls are another arch's, which the filter would refuse every one of)."""
    if not sys.platform.startswith("linux") or sys.maxsize < 1 << 32:
        return None
    return SECCOMP_ARCHES.get(os.uname().machine)


def filter_calls():
    """Install the filter on this process and those it starts (the runner and NumPy need none of
    those calls); False if the kernel refuses it."""
    if seccomp_arch() is None:
        return False
    arch, refused = seccomp_arch()
    head = [(LD, 0, 0, 4),                          # the arch (seccomp_data.arch)
            (JEQ, 0, None, arch),                   # another arch's calls (i386 on x86_64): deny
            (LD, 0, 0, 0),                          # the call's number
            (JGE, None, 0, 0x40000000)]             # x32 calls on x86_64: deny
    program = head + [(JEQ, None, 0, number) for number in refused]
    program += [(RET, 0, 0, ALLOW), (RET, 0, 0, DENY)]
    deny = len(program) - 1                         # a jump counts the instructions it skips
    code = b"".join(struct.pack("=HBBI", op, deny - i - 1 if jt is None else jt,
                                deny - i - 1 if jf is None else jf, k)
                    for i, (op, jt, jf, k) in enumerate(program))
    filters = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("=HxxxxxxQ", len(program), ctypes.addressof(filters))
    libc = ctypes.CDLL(None, use_errno=True)
    return not (libc.prctl(NO_NEW_PRIVS, 1, 0, 0, 0)
                or libc.prctl(SET_SECCOMP, SECCOMP_FILTER, fprog, 0, 0))


def confine(read, write):
    """Landlock: from here on this process (and any it starts) may read only under ``read`` and
    write only under ``write``, neither bind nor connect a TCP socket (ABI 4) and not signal
    processes outside (ABI 6); False where the kernel has no Landlock (the grader's report says
    what was not enforced)."""
    abi = landlock_abi()
    if abi < 1:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    handled = (1 << (13, 14, 15, 15, 16)[min(abi, 5) - 1]) - 1       # every right the ABI knows
    attributes = struct.pack("=QQQ", handled, NETWORK if abi >= NETWORK_ABI else 0, SCOPED if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= NETWORK_ABI else 8     # the fields this ABI knows
    ruleset = libc.syscall(CREATE_RULESET, attributes, ctypes.c_size_t(size), 0)
    if ruleset < 0:
        return False
    for paths, rights in ((read, READ), (write, handled)):
        for path in paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            allowed = rights if stat.S_ISDIR(os.fstat(fd).st_mode) else rights & FILE_RIGHTS
            libc.syscall(ADD_RULE, ruleset, RULE_PATH_BENEATH,
                         struct.pack("=Qi", allowed & handled, fd), 0)
            os.close(fd)
    if libc.prctl(NO_NEW_PRIVS, 1, 0, 0, 0) or libc.syscall(RESTRICT_SELF, ruleset, 0):
        return False
    os.close(ruleset)
    return True


def child(request, site, stdlib):
    """In the forked child: isolate, limit, drop privileges, run the task; never returns."""
    try:
        os.setsid()
        output = os.open(os.path.join(request["io"], "output.txt"),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.closerange(3, 1 << 16)
        _limit(resource.RLIMIT_CORE, 0)
        _limit(resource.RLIMIT_CPU, int(request["cpu"]))
        _limit(resource.RLIMIT_FSIZE, int(request["fsize"]))
        in_use = _memory_in_use()
        if in_use is not None:
            _limit(resource.RLIMIT_AS, in_use + int(request["memory"]))
        jail = request.get("jail") if request.get("uid") is not None else None
        numpy = [os.path.realpath(os.path.join(site, name)) for name in os.listdir(site)]
        try:                            # no new processes or threads (root ignores it: sweep())
            _limit(resource.RLIMIT_NPROC, 0)
        except (OSError, ValueError):   # a system that refuses it (the self-check, not as root)
            if request.get("uid") is not None:
                raise
        if request.get("uid") is not None:
            if jail:                                 # nothing outside the grader's scratch folder
                os.chroot(jail)
            os.setgroups([])
            os.setgid(request["gid"])
            os.setuid(request["uid"])

        def inside(path):                            # a path as the jailed child sees it
            return os.path.join(os.sep, os.path.relpath(path, jail)) if jail else path
        work = inside(request["work"])
        if request.get("landlock"):     # (in the jail too: no signals to other nobody processes)
            if not confine([work, inside(request["task"]), *([] if jail else numpy)],
                           [inside(os.path.join(request["io"], name))
                            for name in ("out", "home", "tmp")]):
                raise RuntimeError("Landlock refused to confine the child")   # never unconfined
        if seccomp_arch() and not filter_calls():
            raise RuntimeError("the kernel refused the child's system call filter")
        os.chdir(work)
        os.environ.clear()
        os.environ.update(HOME=inside(request["home"]), TMPDIR=inside(request["tmp"]),
                          PATH="/usr/bin:/bin", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                          MINIVGG_BACKEND="naive")
        sys.path[:] = [work, inside(site), *stdlib]
        sys.argv = ["minivgg-grader-child"]
        run_task(inside(request["task"]), inside(request["io"]), work)
        code = 0
    except BaseException:                       # the runner's own failure: say so, exit 3
        traceback.print_exc()
        code = 3
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _children():
    """The pids of this process's children (from /proc: a child left by another is one too)."""
    try:
        names = os.listdir("/proc")
    except OSError:                     # no /proc (macOS, the self-check): its process group only
        return []
    me, pids = os.getpid(), []
    for name in names:
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rpartition(")")[2].split()   # (the name may hold spaces, ")")
        except (OSError, ValueError):
            continue                                           # not a process, or gone
        if name.isdigit() and len(fields) > 1 and fields[1] == str(me):
            pids.append(int(name))
    return pids


def sweep():
    """Kill and reap every process the part left behind. The server is a subreaper: a process that
    left the child's group (setsid) and lost its parent becomes the server's child, so each round
    kills the server's children and waits for one; their orphans come up next round."""
    while True:
        for pid in _children():
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def serve(site):
    """The fork server: one JSON request a line on stdin; replies {"pid"}, then {"pid", "status",
    "cpu"} (the child's CPU seconds) when the child and everything it started have ended."""
    if sys.platform.startswith("linux"):               # (the self-check may run elsewhere)
        ctypes.CDLL(None).prctl(SUBREAPER, 1, 0, 0, 0)  # orphans of a part come back here
    stdlib = [p for p in sys.path if p]
    sys.path.append(site)
    import numpy  # noqa: F401  (loaded once here, shared by every child)
    for name in PRELOAD:
        importlib.import_module(name)
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    for line in requests:
        request = json.loads(line)
        replies.flush()
        pid = os.fork()
        if pid == 0:
            child(request, site, stdlib)
        replies.write(json.dumps({"pid": pid}).encode() + b"\n")
        replies.flush()
        _, status, usage = os.wait4(pid, 0)
        try:
            os.killpg(pid, 9)                   # whatever the child started in its group
        except OSError:
            pass
        sweep()                                 # and whatever left the group
        replies.write(json.dumps({"pid": pid, "status": status,
                                  "cpu": usage.ru_utime + usage.ru_stime}).encode() + b"\n")
        replies.flush()


if __name__ == "__main__":
    serve(sys.argv[1])
