"""The sandbox, attacked for real: each test runs an escape attempt inside it and checks
that the attempt failed (and that the host is untouched)."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from agent.errors import SkillError
from skills.config import SandboxConfig
from skills.sandbox import Isolation, Sandbox, detect_isolation
from skills.sandbox.isolation import sandbox_python

ISOLATION = detect_isolation(sandbox_python())
needs_isolation = pytest.mark.skipif(ISOLATION.mode is None, reason=f"no isolation here: {ISOLATION.reason}")


@pytest.fixture(scope="module")
def box() -> Sandbox:
    return Sandbox(SandboxConfig(cpu_seconds=2, wall_seconds=6, memory_mb=256, max_processes=8,
                                 file_size_mb=1, output_bytes=8192))


def test_refuses_to_run_without_isolation(tmp_path):
    marker = tmp_path / "ran"
    sandbox = Sandbox(isolation=Isolation(None, "unshare: Operation not permitted"))
    with pytest.raises(SkillError, match="refused.*cannot isolate.*Operation not permitted.*user namespaces"):
        sandbox.run_python(f"open({str(marker)!r}, 'w').write('x')")
    assert not marker.exists()


@needs_isolation
def test_runs_ordinary_code_and_cleans_its_scratch_dir(box):
    before = set(Path(tempfile.gettempdir()).glob("llmos-sandbox-*"))
    result = box.run_python("import json, math\nprint(json.dumps({'r': math.sqrt(16)}))",
                            files={"helper.py": "X = 1\n"})
    assert result.ok and result.stdout.strip() == '{"r": 4.0}'
    assert set(Path(tempfile.gettempdir()).glob("llmos-sandbox-*")) == before


@needs_isolation
def test_cannot_read_host_files(box, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-TOKEN")
    code = f"""
import os
hits = []
for path in [{str(secret)!r}, "/etc/passwd", "/etc/shadow", "/proc/1/environ", "/proc/self/environ",
             "/root/.bashrc", {str(Path.cwd() / 'pyproject.toml')!r}]:
    try:
        hits.append(path + ":" + open(path).read()[:40])
    except OSError as exc:
        pass
print("READ", hits)
print("ROOT", sorted(os.listdir("/")))
"""
    result = box.run_python(code)
    assert "READ []" in result.stdout, result.stdout + result.stderr
    assert "TOP-SECRET" not in result.stdout
    assert "'etc'" not in result.stdout and "'proc'" not in result.stdout and "'home'" not in result.stdout


@needs_isolation
def test_cannot_write_outside_or_escape_the_root(box):
    code = """
import os
for attempt in (lambda: open("/usr/evil", "w"), lambda: os.chroot("/tmp"), lambda: os.mkdir("/usr/lib/x"),
                lambda: os.setuid(0)):
    try:
        attempt()
        print("ESCAPED")
    except OSError as exc:
        print("blocked", type(exc).__name__)
"""
    result = box.run_python(code)
    assert "ESCAPED" not in result.stdout and result.stdout.count("blocked") == 4, result.stdout + result.stderr


@needs_isolation
def test_no_network_even_to_a_loopback_listener(box):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    code = f"""
import socket
for family, addr in ((socket.AF_INET, ("127.0.0.1", {port})), (socket.AF_INET, ("10.0.0.1", 80))):
    s = socket.socket(family)
    s.settimeout(2)
    try:
        s.connect(addr)
        print("CONNECTED", addr)
    except OSError as exc:
        print("blocked", exc.errno)
"""
    result = box.run_python(code)
    server.setblocking(False)
    with pytest.raises(BlockingIOError):  # a connection would sit in the backlog even unaccepted
        server.accept()
    server.close()
    assert "CONNECTED" not in result.stdout and result.stdout.count("blocked") == 2, result.stdout + result.stderr


@needs_isolation
def test_environment_secrets_do_not_leak(box, monkeypatch):
    monkeypatch.setenv("LLMOS_TEST_API_KEY", "sk-very-secret")
    result = box.run_python("import os\nprint(dict(os.environ))")
    assert result.ok and "sk-very-secret" not in result.stdout and "LLMOS_TEST_API_KEY" not in result.stdout


@needs_isolation
def test_ctypes_is_refused(box):
    result = box.run_python("import ctypes\nctypes.CDLL(None).system(b'id')")
    assert not result.ok and "ctypes is disabled" in result.stderr
    result = box.run_python("import importlib\nimportlib.import_module('_ctypes')")
    assert not result.ok and "ctypes is disabled" in result.stderr


@needs_isolation
def test_fork_bomb_is_contained_and_leaves_nothing_behind(box):
    result = box.run_python("import os\nwhile True:\n    os.fork()")
    assert not result.ok
    # the process limit stops it (fork fails with EAGAIN), not the CPU or wall-clock limits later
    assert "BlockingIOError: [Errno 11] Resource temporarily unavailable" in result.stderr, result.stderr
    assert result.limit is None and result.duration_s < box.config.cpu_seconds, result
    if ISOLATION.mode == "root":  # nothing of the sandbox user outlives the run
        ps = subprocess.run(["ps", "-u", str(box.config.uid), "-o", "pid="], capture_output=True, text=True)
        assert ps.stdout.strip() == ""


@needs_isolation
def test_huge_allocation_fails(box):
    result = box.run_python("x = bytearray(8 * 1024**3)\nprint('ALLOCATED')")
    assert not result.ok and "ALLOCATED" not in result.stdout and "MemoryError" in result.stderr


@needs_isolation
def test_endless_output_is_cut(box):
    result = box.run_python("while True:\n    print('y' * 1000)")
    assert result.limit == "output" and len(result.stdout) <= box.config.output_bytes


@needs_isolation
def test_cpu_and_wall_clock_limits():
    box = Sandbox(SandboxConfig(cpu_seconds=1, wall_seconds=3))
    spin = box.run_python("while True:\n    pass")
    assert spin.limit in ("cpu time", "wall-clock") and not spin.ok
    sleep = box.run_python("import time\ntime.sleep(60)")
    assert sleep.limit == "wall-clock" and sleep.duration_s < 15


@needs_isolation
def test_file_size_limit(box):
    result = box.run_python("open('/work/big', 'wb').write(b'x' * (4 << 20))")
    assert not result.ok and ("File too large" in result.stderr or result.limit == "file size")


def test_file_names_cannot_leave_the_scratch_dir(box):
    with pytest.raises(SkillError, match="leaves the scratch directory"):
        Sandbox(box.config, isolation=Isolation("root"))._spawn({"../../evil.py": "x"}, "main.py", (), "",
                                                               Isolation("root"))


def test_mechanisms_are_reported():
    assert Isolation(None, "x").mechanisms == ()
    assert any("network namespace" in m for m in Isolation("userns").mechanisms)
    assert os.path.isabs(sandbox_python())
