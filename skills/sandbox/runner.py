"""Run untrusted Python in an isolated, resource-limited process (the host side).

::

    sandbox = Sandbox(SandboxConfig())
    result = sandbox.run_python("print(sum(range(10)))")
    result.ok, result.stdout          # True, "45\\n"

Each run gets a fresh scratch directory (removed afterwards) and a child process tree in
new mount, network, PID, IPC and UTS namespaces (see :mod:`skills.sandbox.bootstrap`):

- filesystem: a private tmpfs root; the interpreter and system libraries are bound
  read-only; ``/work`` (the program's files) and ``/tmp`` are writable, size-capped, and
  vanish with the run. The host's files, ``/proc`` and ``/etc`` are not there.
- network: an empty network namespace (not even a loopback that is up).
- privileges: an unprivileged uid (or, without root, uid 0 of a user namespace whose
  capabilities are dropped on exec), no_new_privs, an empty capability bounding set.
- limits: CPU time, address space, processes, file size, open files (rlimits); wall
  clock and output size enforced here, by killing the whole tree.
- environment: a fixed, clean one; ``ctypes`` is refused at import.

When the kernel does not allow the namespaces, :meth:`Sandbox.run` raises
:class:`~agent.errors.SkillError` and runs nothing.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.errors import SkillError
from skills.config import SandboxConfig
from skills.sandbox.isolation import Isolation, interpreter_binds, sandbox_python

__all__ = ["Sandbox", "SandboxResult", "detect_isolation"]

log = logging.getLogger(__name__)

_BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
_ISOLATION_FAILED = 125
_MARK = b"llmos-sandbox:"


@dataclass
class SandboxResult:
    """What a sandboxed program did."""

    returncode: int
    """Exit status; 128+N when killed by signal N (e.g. 137 after SIGKILL)."""
    stdout: str
    stderr: str
    duration_s: float
    limit: str | None = None
    """The limit that stopped the program (`wall-clock`, `cpu time`, `output`, `file size`), if any."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.limit is None

    def error_summary(self, max_chars: int = 1200) -> str:
        """A short description of a failure, for the user or for the model's retry."""
        if self.limit:
            head = f"stopped by the sandbox's {self.limit} limit"
        else:
            head = f"exited with status {self.returncode}"
        tail = self.stderr.strip()[-max_chars:]
        return f"{head}\n{tail}" if tail else head


class Sandbox:
    """Runs programs under :class:`~skills.config.SandboxConfig` limits.

    ``isolation`` is what the machine allows (default: detected once per process); pass
    ``Isolation(mode=None, reason=...)`` to see the refusal path.
    """

    def __init__(self, config: SandboxConfig | None = None, *, isolation: Isolation | None = None) -> None:
        self.config = config or SandboxConfig()
        self._isolation = isolation

    @property
    def isolation(self) -> Isolation:
        if self._isolation is None:
            self._isolation = detect_isolation(sandbox_python(self.config.python))
        return self._isolation

    def check(self) -> None:
        """Raise :class:`SkillError` (saying why and what to do) when code cannot be isolated."""
        iso = self.isolation
        if iso.mode is None:
            raise SkillError(
                f"code execution is refused: this machine cannot isolate untrusted code ({iso.reason}). "
                "Run llmos as root, or enable unprivileged user namespaces (Linux: sysctl "
                "kernel.unprivileged_userns_clone=1 and user.max_user_namespaces>0); or turn execution "
                "off with skills.code.allow_execution: false."
            )

    def run_python(self, source: str, *, files: Mapping[str, str] | None = None, stdin: str = "") -> SandboxResult:
        """Run ``source`` as ``/work/main.py`` with ``files`` beside it."""
        return self.run({**(files or {}), "main.py": source}, "main.py", stdin=stdin)

    def run(self, files: Mapping[str, str], main: str, *, args: tuple[str, ...] = (), stdin: str = "") -> SandboxResult:
        """Run ``/work/<main>`` with Python; ``files`` are written under ``/work`` first."""
        self.check()
        return self._spawn(files, main, args, stdin, self.isolation)

    def _spawn(self, files: Mapping[str, str], main: str, args: tuple[str, ...], stdin: str,
               iso: Isolation) -> SandboxResult:
        cfg = self.config
        scratch = Path(tempfile.mkdtemp(prefix="llmos-sandbox-"))
        try:
            os.chmod(scratch, 0o700)
            inputs = scratch / "in"
            inputs.mkdir()
            (scratch / "root").mkdir()
            for name, text in files.items():
                path = (inputs / name).resolve()
                if inputs.resolve() not in path.parents:
                    raise SkillError(f"sandbox file name {name!r} leaves the scratch directory: use a plain relative path")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            python = sandbox_python(cfg.python)
            spec = {
                "mode": iso.mode, "uid": cfg.uid, "root": str(scratch / "root"), "inputs": str(inputs),
                "binds": interpreter_binds(python), "python": python, "argv": [main, *args],
                "scratch_mb": cfg.scratch_mb,
                "limits": {"cpu_seconds": cfg.cpu_seconds, "memory_mb": cfg.memory_mb,
                           "max_processes": cfg.max_processes, "file_size_mb": cfg.file_size_mb,
                           "max_open_files": cfg.max_open_files},
            }
            return self._communicate([python, "-I", "-S", "-B", str(_BOOTSTRAP), json.dumps(spec)], stdin)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _communicate(self, cmd: list[str], stdin: str) -> SandboxResult:
        cfg = self.config
        started = time.monotonic()
        # The bootstrap itself gets no secrets either: a minimal environment, no inherited fds.
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, cwd="/",
                                start_new_session=True, close_fds=True)
        assert proc.stdin and proc.stdout and proc.stderr
        try:
            proc.stdin.write(stdin.encode("utf-8"))
            proc.stdin.close()
        except BrokenPipeError:
            pass
        buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
        limit: str | None = None
        deadline = started + cfg.wall_seconds
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            sel.register(proc.stderr, selectors.EVENT_READ)
            while sel.get_map() and limit is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    limit = "wall-clock"
                    break
                for key, _ in sel.select(timeout=min(left, 0.5)):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    buf = buffers[key.fd]
                    buf += chunk[: max(0, cfg.output_bytes - len(buf))]
                    if len(buf) >= cfg.output_bytes:
                        limit = "output"  # endless output: stop it rather than drain it forever
        if limit:
            _kill_tree(proc)
        try:
            rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            limit = limit or "wall-clock"
            _kill_tree(proc)
            rc = proc.wait()
        stdout_b, stderr_b = (bytes(buffers[f.fileno()]) for f in (proc.stdout, proc.stderr))
        proc.stdout.close()
        proc.stderr.close()
        if rc == _ISOLATION_FAILED and stderr_b.lstrip().startswith(_MARK):
            message = stderr_b.decode("utf-8", "replace").strip().splitlines()[0][len(_MARK):].strip()
            raise SkillError(f"the sandbox could not isolate the program, so it was not run: {message}. "
                             "Check that this kernel allows namespaces (see `llmos skills`).")
        rc = 128 - rc if rc < 0 else rc
        duration = time.monotonic() - started
        limit = limit or _limit_from_status(rc, duration >= cfg.cpu_seconds)
        return SandboxResult(returncode=rc, stdout=stdout_b.decode("utf-8", "replace"),
                             stderr=stderr_b.decode("utf-8", "replace"),
                             duration_s=round(duration, 3), limit=limit)


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the bootstrap's process group; the sandbox's PID 1 dies with it (PDEATHSIG),
    and with PID 1 every process in the sandbox."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _limit_from_status(rc: int, long_enough_for_cpu: bool) -> str | None:
    # RLIMIT_CPU sends SIGXCPU at the soft limit and SIGKILL at the hard one.
    if rc == 128 + signal.SIGXCPU or (rc == 128 + signal.SIGKILL and long_enough_for_cpu):
        return "cpu time"
    if rc == 128 + signal.SIGXFSZ:
        return "file size"
    return None


@functools.lru_cache(maxsize=4)
def detect_isolation(python: str) -> Isolation:
    """Probe (by really running a tiny program) which mode works; cached per interpreter."""
    if not sys.platform.startswith("linux"):
        return Isolation(None, f"the sandbox needs Linux namespaces; this is {sys.platform}")
    modes = ("root", "userns") if os.geteuid() == 0 else ("userns",)
    reasons = []
    for mode in modes:
        probe = Sandbox(SandboxConfig(python=python, wall_seconds=20), isolation=Isolation(mode))
        try:
            result = probe._spawn({"main.py": "print('ok')"}, "main.py", (), "", Isolation(mode))
        except SkillError as exc:
            reasons.append(f"{mode}: {exc}")
            continue
        if result.ok and result.stdout.strip() == "ok":
            return Isolation(mode)
        reasons.append(f"{mode}: probe exited {result.returncode}: {result.stderr.strip()[-300:]}")
    reason = "; ".join(reasons) or "no isolation mode available"
    log.warning("the code sandbox is unavailable: %s", reason)
    return Isolation(None, reason)
