"""The kernels work from a read-only install: compiled code is cached under the user's cache
directory instead, and with no writable directory at all they still run (compiled afresh).
Compile and load times are measured by benchmarks/bench_cold_start.py, not here."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import minivgg

# Prints how many of the two kernels it called were loaded from the disk cache.
CODE = """
import numpy as np
from minivgg.kernels import jit
x = np.array([[[[-1.0, 2.0], [0.5, 1.0]]]], np.float32)
assert jit.relu_forward(x).tolist() == [[[[0.0, 2.0], [0.5, 1.0]]]]
assert jit.maxpool_forward(x, (2, 2), (2, 2))[0].tolist() == [[[[2.0]]]]
print(len(jit._zero_below.stats.cache_hits) + len(jit._maxpool_forward.stats.cache_hits))
"""


def run_with_read_only(read_only, env, cwd):
    """Run CODE with the directories ``read_only`` unwritable: by permissions for a normal
    user; root ignores those, so there in a private mount namespace with read-only bind mounts."""
    if os.geteuid() != 0:
        for path in read_only:
            for p in [path, *path.rglob("*")]:
                p.chmod(p.stat().st_mode & ~0o222)
        command = [sys.executable, "-c", CODE]
    else:
        if shutil.which("unshare") is None:
            pytest.skip("running as root without unshare: cannot make a read-only directory")
        mounts = " && ".join(f"mount --bind -o ro '{p}' '{p}'" for p in read_only)
        command = ["unshare", "-m", "sh", "-c", f'{mounts} && exec "$0" -c "$1"',
                   sys.executable, CODE]
    try:
        result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                                timeout=300)
    finally:
        for path in read_only:
            for p in [path, *path.rglob("*")]:
                p.chmod(p.stat().st_mode | 0o200)
    if result.returncode != 0 and "unshare" in result.stderr:
        pytest.skip(f"cannot make a read-only mount here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def install(tmp_path):
    """A copy of the package in its own folder (no cached code), and an empty home."""
    source = Path(minivgg.__file__).parent
    shutil.copytree(source, tmp_path / "site" / "minivgg",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "cache").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(PYTHONPATH=str(tmp_path / "site"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               HOME=str(tmp_path))
    return tmp_path, env


def test_read_only_install_caches_under_the_users_cache_dir(install):
    root, env = install
    assert run_with_read_only([root / "site"], env, root) == 0               # compiled
    assert list((root / "cache" / "numba").rglob("*.nbi"))             # cached there
    assert not list((root / "site").rglob("*.nbi"))                    # not in the install
    assert run_with_read_only([root / "site"], env, root) == 2               # loaded, both kernels


def test_nothing_writable_still_runs(install):
    root, env = install
    assert run_with_read_only([root / "site", root / "cache"], env, root) == 0


def test_numba_cache_dir_wins(install):
    """A user's NUMBA_CACHE_DIR is where the kernels are cached (read-only install or not)."""
    root, env = install
    env["NUMBA_CACHE_DIR"] = str(root / "chosen")
    assert run_with_read_only([root / "site"], env, root) == 0
    assert list((root / "chosen").rglob("*.nbi"))
    assert not list((root / "cache").rglob("*.nbi"))
    assert run_with_read_only([root / "site"], env, root) == 2
