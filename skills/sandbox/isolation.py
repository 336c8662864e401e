"""What isolation the sandbox uses: the mode, the interpreter and the folders bound into it.

:func:`skills.sandbox.runner.detect_isolation` finds the mode this machine allows, once per
process, by a real probe."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Isolation", "interpreter_binds", "sandbox_python"]

log = logging.getLogger(__name__)

# System directories bound read-only into the sandbox (symlinks, as on merged-/usr systems,
# are recreated). Nothing else of the host is visible: no /etc, /home, /root, /proc.
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")


@dataclass(frozen=True)
class Isolation:
    """How the sandbox isolates programs here.

    ``mode`` is ``"root"`` (llmos runs as root: namespaces directly, program as an
    unprivileged uid), ``"userns"`` (an unprivileged user namespace provides them), or
    ``None`` when neither works, with ``reason`` saying why; the sandbox then refuses.
    """

    mode: str | None
    reason: str = ""

    @property
    def mechanisms(self) -> tuple[str, ...]:
        if self.mode is None:
            return ()
        base = ("mount namespace + pivot_root onto a tmpfs", "network namespace (no interfaces up)",
                "pid namespace", "ipc and uts namespaces", "rlimits (cpu, address space, processes, file size, fds)",
                "no_new_privs", "empty capability bounding set", "clean environment", "ctypes import refused")
        who = "unprivileged uid" if self.mode == "root" else "user namespace, capabilities dropped on exec"
        return (*base, who)


def sandbox_python(configured: str | None = None) -> str:
    """The interpreter that runs sandboxed programs: the configured one, else the real
    binary behind this process's (possibly venv) interpreter."""
    if configured:
        return str(Path(configured).expanduser())
    base = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(base)


def interpreter_binds(python: str) -> list[str]:
    """Paths to make visible (read-only) so ``python`` runs: system dirs plus its prefix."""
    binds = [d for d in _SYSTEM_DIRS if os.path.lexists(d)]
    real = os.path.realpath(python)
    prefix = str(Path(real).parent.parent)
    if not any(prefix == d or prefix.startswith(d + "/") for d in binds):
        binds.append(prefix)  # e.g. a pyenv or uv interpreter under a home directory
    return binds
