"""The code sandbox: run untrusted Python isolated by Linux namespaces and rlimits.

See :mod:`skills.sandbox.runner` for what is isolated and how; it refuses to run anything
where the kernel cannot isolate.
"""

from __future__ import annotations

from skills.sandbox.isolation import Isolation
from skills.sandbox.runner import Sandbox, SandboxResult, detect_isolation

__all__ = ["Isolation", "Sandbox", "SandboxResult", "detect_isolation"]
