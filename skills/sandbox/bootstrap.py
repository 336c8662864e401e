"""The sandbox's child side: isolate, then exec the interpreter on the untrusted program.

Run as ``python -I -S -B bootstrap.py SPEC_JSON`` by :class:`skills.sandbox.Sandbox`. It
imports only the standard library (it runs before any isolation, outside the venv) and
never imports llmos. Process tree::

    B0  this script, in the caller's PID namespace: unshare(), fork, wait
    └── B1  PID 1 of a new PID namespace: build the new root, pivot_root, fork, wait
        └── B2  drop privileges, set rlimits, exec python on the program

When B1 exits, the kernel kills everything left in its PID namespace, so nothing the
program started outlives the run. B1 dies with B0 (PR_SET_PDEATHSIG).

Exit status 125 with a line starting ``llmos-sandbox:`` on stderr means isolation could
not be set up; the caller refuses to run code then.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import shutil
import signal
import sys

ISOLATION_FAILED = 125

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 28, 38
# SECBIT_NOROOT and friends, each with its _LOCKED bit: uid 0 gains no capabilities on exec.
SECUREBITS_LOCKED_NOROOT = 0xFF
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

# The program runs with this and nothing else: no caller secrets leak through the environment.
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/work", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
             "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}

# Runs in B2 before the program: ctypes would let the program call libc directly, so it is
# refused at import (the kernel-level isolation holds without this; it is defence in depth).
RUNNER = """
import sys
def _guard(event, args):
    if event == "import" and args and args[0] in ("ctypes", "_ctypes"):
        raise ImportError("ctypes is disabled in the llmos sandbox")
sys.addaudithook(_guard)
del _guard
sys.argv = sys.argv[1:]
sys.path.insert(0, "/work")
import runpy
runpy.run_path(sys.argv[0], run_name="__main__")
"""

_libc = ctypes.CDLL(None, use_errno=True)


def fail(message: str) -> None:
    sys.stderr.write(f"llmos-sandbox: {message}\n")
    sys.stderr.flush()
    os._exit(ISOLATION_FAILED)


def check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        fail(f"{what} failed: {os.strerror(err)} (errno {err})")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(s):
        return (s.encode() if s is not None else None)
    check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
          f"mount {source or ''} on {target}")


def prctl(option: int, arg: int) -> int:
    return int(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0))


def locked_flags(path: str) -> int:
    """Mount flags a read-only remount must keep (the kernel refuses to drop them in a user ns)."""
    st = os.statvfs(path)
    out = 0
    for st_bit, ms_bit in ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
                           (1024, MS_NOATIME), (2048, MS_NODIRATIME), (4096, MS_RELATIME)):
        if st.f_flag & st_bit:
            out |= ms_bit
    return out


def enter_namespaces(spec: dict) -> None:
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    uid, gid = os.geteuid(), os.getegid()
    if spec["mode"] == "userns":
        flags |= CLONE_NEWUSER
    check(_libc.unshare(flags), "unshare(mount, network, pid, ipc, uts namespaces)")
    if spec["mode"] == "userns":
        try:
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
                with open(f"/proc/self/{name}", "w") as fh:
                    fh.write(text)
        except OSError as exc:
            fail(f"cannot map the user namespace ids: {exc}")


def build_root(spec: dict) -> None:
    """A tmpfs root holding read-only binds of the interpreter and its libraries, /dev
    basics, a writable /tmp and /work (the program's files); then pivot_root into it."""
    root = spec["root"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={spec['scratch_mb']}m,mode=0755")
    for path in spec["binds"]:
        if os.path.islink(path):
            target = root + path
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(os.readlink(path), target)
            continue
        if not os.path.isdir(path):
            continue
        target = root + path
        os.makedirs(target, exist_ok=True)
        mount(path, target, None, MS_BIND | MS_REC)
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | locked_flags(path))
    os.makedirs(root + "/dev", exist_ok=True)
    for dev in ("null", "zero", "urandom", "random"):
        open(f"{root}/dev/{dev}", "w").close()
        mount(f"/dev/{dev}", f"{root}/dev/{dev}", None, MS_BIND)
    for name, mode in (("tmp", 0o1777), ("work", 0o755)):
        os.makedirs(f"{root}/{name}", exist_ok=True)
        os.chmod(f"{root}/{name}", mode)
    shutil.copytree(spec["inputs"], root + "/work", dirs_exist_ok=True)
    if spec["mode"] == "root":
        for dirpath, _dirs, files in os.walk(root + "/work"):
            os.chown(dirpath, spec["uid"], spec["uid"])
            for f in files:
                os.chown(os.path.join(dirpath, f), spec["uid"], spec["uid"])
    os.chdir(root)
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        fail(f"pivot_root is not known on {platform.machine()}")
    check(_libc.syscall(number, b".", b"."), "pivot_root")
    check(_libc.umount2(b".", MNT_DETACH), "detaching the old root")
    os.chdir("/work")


def set_limits(limits: dict) -> None:
    cpu = int(limits["cpu_seconds"])
    pairs = {
        resource.RLIMIT_CPU: (cpu, cpu + 1),  # SIGXCPU at the soft limit, SIGKILL one second later
        resource.RLIMIT_AS: (limits["memory_mb"] << 20,) * 2,
        resource.RLIMIT_NPROC: (limits["max_processes"],) * 2,
        resource.RLIMIT_FSIZE: (limits["file_size_mb"] << 20,) * 2,
        resource.RLIMIT_NOFILE: (limits["max_open_files"],) * 2,
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_MEMLOCK: (0, 0),
    }
    for which, value in pairs.items():
        resource.setrlimit(which, value)


def drop_privileges(spec: dict) -> None:
    for cap in range(64):
        if prctl(PR_CAPBSET_DROP, cap) != 0:
            break  # past the last capability this kernel knows
    if spec["mode"] == "root":
        uid = spec["uid"]
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # from root to another uid: every capability is cleared
    elif prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_NOROOT) != 0:
        fail("cannot set securebits (needed to drop capabilities inside the user namespace)")
    if prctl(PR_SET_NO_NEW_PRIVS, 1) != 0:
        fail("cannot set no_new_privs")


def run_program(spec: dict) -> None:
    """B2: limits, privileges, exec. Any failure here is an isolation failure."""
    try:
        set_limits(spec["limits"])
        drop_privileges(spec)
        argv = [spec["python"], "-I", "-S", "-B", "-c", RUNNER, *spec["argv"]]
        os.execve(spec["python"], argv, dict(CLEAN_ENV))
    except OSError as exc:
        fail(f"cannot start the program: {exc}")


def wait_for(pid: int, reap_all: bool) -> int:
    """Wait for ``pid`` (as PID 1, reaping orphans too); return a shell-style status."""
    while True:
        try:
            got, status = os.waitpid(-1 if reap_all else pid, 0)
        except ChildProcessError:
            return ISOLATION_FAILED
        if got == pid:
            if os.WIFSIGNALED(status):
                return 128 + os.WTERMSIG(status)
            return os.WEXITSTATUS(status)


def pid_one(spec: dict) -> None:
    """B1: PID 1 of the sandbox's PID namespace."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    prctl(PR_SET_DUMPABLE, 0)
    build_root(spec)
    try:
        _libc.sethostname(b"sandbox", 7)
    except OSError:
        pass
    child = os.fork()
    if child == 0:
        run_program(spec)
    os._exit(wait_for(child, reap_all=True))


def main() -> None:
    spec = json.loads(sys.argv[1])
    enter_namespaces(spec)
    child = os.fork()
    if child == 0:
        try:
            pid_one(spec)
        except BaseException as exc:  # noqa: BLE001 - any failure to isolate must be reported as such
            fail(f"setting up the sandbox failed: {exc!r}")
        os._exit(ISOLATION_FAILED)
    os._exit(wait_for(child, reap_all=False))


if __name__ == "__main__":
    main()
