"""``llmos pull`` against a fake Hugging Face Hub on localhost: never the internet.

The fake hub speaks the endpoints huggingface_hub 2.4 calls: model info
(``/api/models/{repo}/revision/{rev}?blobs=True``) and file HEAD/GET
(``/{repo}/resolve/{rev}/{file}``) with the headers it reads (``X-Repo-Commit``, ``ETag``,
``X-Linked-Etag``, ``X-Linked-Size``, ``Content-Length``) and HTTP Range (206).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent.errors import InputError, ModelError
from agent.models.pull import is_complete_snapshot, pull, pull_target, select_files

REPO = "tiny-org/tiny-model"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS = ("model.safetensors", "pytorch_model.bin", "model.onnx")


def _safetensors(n_floats: int = 16384) -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [n_floats], "data_offsets": [0, 4 * n_floats]}}).encode()
    return struct.pack("<Q", len(header)) + header + bytes(range(256)) * (4 * n_floats // 256)


def _tiny_repo() -> dict[str, bytes]:
    return {
        "config.json": json.dumps({"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2,
                                   "num_hidden_layers": 1, "intermediate_size": 16, "vocab_size": 32}).encode(),
        "tokenizer.json": json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab": {}}}).encode(),
        "generation_config.json": b'{"do_sample": false}',
        "model.safetensors": _safetensors(),
        "pytorch_model.bin": b"other weights format" * 100,
        "model.onnx": b"onnx" * 100,
        "README.md": b"# tiny\n",
        "onnx/model.onnx": b"onnx" * 10,
    }


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """The Hub's API for a few in-memory repos, with faults to inject, recording every request."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {REPO: _tiny_repo()}
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Range header
        self.drop_once: set[str] = set()  # files whose first GET breaks off halfway
        self.fail: set[str] = set()  # files whose GET answers 500
        self.corrupt: set[str] = set()  # files served with one byte flipped (metadata unchanged)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                hub.handle(self, body=True)

            def do_HEAD(self) -> None:
                hub.handle(self, body=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def gets(self, name: str) -> list[str | None]:
        """The Range headers of the GETs for file ``name``."""
        return [r for m, p, r in self.requests if m == "GET" and p.endswith(f"/resolve/{COMMIT}/{name}")]

    def handle(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        path = h.path.split("?")[0]
        self.requests.append((h.command, path, h.headers.get("Range")))
        if path.startswith("/api/models/") and "/revision/" in path:
            repo, revision = path.removeprefix("/api/models/").split("/revision/")
            return self.info(h, repo, revision)
        if "/resolve/" in path:
            repo, rest = path.lstrip("/").split("/resolve/", 1)
            revision, name = rest.split("/", 1)
            return self.file(h, repo, revision, name, body)
        self.send(h, 404, b"not found")

    def info(self, h: BaseHTTPRequestHandler, repo: str, revision: str) -> None:
        if repo not in self.repos:
            return self.send(h, 404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"})
        if revision not in ("main", COMMIT):
            return self.send(h, 404, b'{"error": "Invalid rev id"}', {"X-Error-Code": "RevisionNotFound"})
        siblings = []
        for name, data in self.repos[repo].items():
            entry: dict[str, Any] = {"rfilename": name, "size": len(data), "blobId": _git_oid(data)}
            if name.endswith(LFS):
                sha = hashlib.sha256(data).hexdigest()
                pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n"
                entry["blobId"] = _git_oid(pointer.encode())
                entry["lfs"] = {"size": len(data), "sha256": sha, "pointerSize": len(pointer)}
            siblings.append(entry)
        self.send(h, 200, json.dumps({"id": repo, "sha": COMMIT, "siblings": siblings}).encode(),
                  {"Content-Type": "application/json"})

    def file(self, h: BaseHTTPRequestHandler, repo: str, revision: str, name: str, body: bool) -> None:
        files = self.repos.get(repo)
        if files is None:
            return self.send(h, 404, b"", {"X-Error-Code": "RepoNotFound"}, body)
        if name not in files:
            return self.send(h, 404, b"", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT}, body)
        data = files[name]
        headers = {"X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes"}
        if name.endswith(LFS):
            sha = hashlib.sha256(data).hexdigest()
            headers.update({"ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data))})
        else:
            headers["ETag"] = f'"{_git_oid(data)}"'
        if not body:
            return self.send(h, 200, data, headers, body=False)
        if name in self.fail:
            return self.send(h, 500, b"internal error")
        if name in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = int(h.headers["Range"].removeprefix("bytes=").split("-")[0]) if h.headers.get("Range") else 0
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if name in self.drop_once and not start:
            self.drop_once.discard(name)
            h.send_response(200)
            for key, value in {**headers, "Content-Length": str(len(data))}.items():
                h.send_header(key, value)
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            h.close_connection = True  # the connection breaks off halfway through the body
            return None
        self.send(h, 206 if start else 200, data[start:], headers)

    @staticmethod
    def send(h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str] | None = None,
             body: bool = True) -> None:
        h.send_response(status)
        for key, value in {**(headers or {}), "Content-Length": str(len(data))}.items():
            h.send_header(key, value)
        h.end_headers()
        if body:
            h.wfile.write(data)


@pytest.fixture
def hub():
    server = FakeHub()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def hf_env(tmp_path, hub):
    """The environment of an ``llmos`` process that sees only the fake hub and a fresh cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_CACHE=str(tmp_path / "hf" / "hub"),
               HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", NO_PROXY="127.0.0.1,localhost",
               no_proxy="127.0.0.1,localhost", OMP_NUM_THREADS="1")
    return env


def llmos(*args: str, env: dict[str, str], stderr_tty: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "agent.cli.main", *args]
    if not stderr_tty:
        return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    # stderr on a pseudo-terminal, as in an interactive shell: the progress bar is drawn
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a real terminal has a size
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=slave, text=True, env=env)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    stdout, _ = proc.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(master)
    return subprocess.CompletedProcess(command, proc.returncode, stdout, b"".join(chunks).decode(errors="replace"))


def _snapshot(env: dict[str, str], repo: str = REPO) -> Path:
    return Path(env["HF_HUB_CACHE"]) / f"models--{repo.replace('/', '--')}" / "snapshots" / COMMIT


def test_pull_downloads_what_a_model_needs_verifies_it_and_models_lists_it(hub, hf_env):
    result = llmos("pull", REPO, "--json", env=hf_env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["repo_id"] == REPO and report["commit"] == COMMIT and report["verified"]
    assert {f["name"] for f in report["files"]} == {"config.json", "tokenizer.json", "generation_config.json",
                                                      "model.safetensors"}
    checks = {f["name"]: f["check"] for f in report["files"]}
    assert checks["model.safetensors"] == "sha256" and checks["config.json"] == "git blob id"
    assert report["downloaded_bytes"] == report["total_bytes"] == sum(
        len(hub.repos[REPO][f["name"]]) for f in report["files"])
    # other weight formats, sub-folders and the README are never fetched
    for skipped in ("pytorch_model.bin", "model.onnx", "README.md", "onnx/model.onnx"):
        assert not [p for m, p, _ in hub.requests if p.endswith(f"/{skipped}")], skipped
    # no bar into a pipe
    assert "%|" not in result.stderr

    snapshot = _snapshot(hf_env)
    assert (snapshot / "model.safetensors").read_bytes() == hub.repos[REPO]["model.safetensors"]
    assert is_complete_snapshot(snapshot)
    # the normal cache layout: huggingface_hub (and so from_pretrained) finds it offline by repo id
    from huggingface_hub import try_to_load_from_cache

    assert try_to_load_from_cache(REPO, "config.json", cache_dir=hf_env["HF_HUB_CACHE"]) == str(
        snapshot / "config.json")

    rows = json.loads(llmos("models", "--json", env=hf_env).stdout)
    row = next(r for r in rows if r["name"] == REPO)
    assert row["status"].startswith("pulled") and row["size_bytes"] > 60_000

    # a second pull fetches nothing and verifies again
    gets = len([r for r in hub.requests if r[0] == "GET"])
    again = llmos("pull", REPO, env=hf_env)
    assert again.returncode == 0, again.stderr
    assert "(0 B downloaded now), sizes and hashes verified" in again.stdout
    assert len([r for r in hub.requests if r[0] == "GET"]) == gets + 1  # the model info only


def test_a_dropped_connection_resumes_with_a_range_request_under_a_progress_bar(hub, hf_env):
    # huggingface_hub writes what it received in 10 MiB pieces: a file of 24 MiB, cut at 12 MiB
    hub.repos[REPO]["model.safetensors"] = _safetensors(6 * 2**20)
    hub.drop_once.add("model.safetensors")
    result = llmos("pull", REPO, "--json", env=hf_env, stderr_tty=True)
    assert result.returncode == 0, result.stderr
    first, second = hub.gets("model.safetensors")
    assert first is None and second is not None and second.startswith("bytes=")
    assert 0 < int(second.removeprefix("bytes=").rstrip("-")) <= 12 * 2**20
    assert hashlib.sha256((_snapshot(hf_env) / "model.safetensors").read_bytes()).hexdigest() == hashlib.sha256(
        hub.repos[REPO]["model.safetensors"]).hexdigest()
    assert json.loads(result.stdout)["verified"]
    assert f"pulling {REPO}" in result.stderr and "100%" in result.stderr


def test_an_interrupted_pull_continues_without_fetching_complete_files_again(hub, hf_env):
    hub.fail.add("model.safetensors")
    first = llmos("pull", REPO, env=hf_env)
    assert first.returncode == 2
    assert "answered 500" in first.stderr and f"run `llmos pull {REPO}` again" in first.stderr
    assert "Traceback" not in first.stderr
    hub.fail.clear()
    second = llmos("pull", REPO, "--json", env=hf_env)
    assert second.returncode == 0, second.stderr
    fetched = {f["name"] for f in json.loads(second.stdout)["files"] if f["downloaded"]}
    assert fetched == {"model.safetensors"}
    assert len(hub.gets("config.json")) == 1 and len(hub.gets("model.safetensors")) == 2


def test_a_corrupt_file_is_rejected_and_removed_from_the_cache(hub, hf_env):
    hub.corrupt.add("model.safetensors")
    result = llmos("pull", REPO, env=hf_env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "model.safetensors: sha256" in result.stderr and "do not match the Hub's metadata" in result.stderr
    assert f"removed from the cache: run `llmos pull {REPO}` again" in result.stderr
    snapshot = _snapshot(hf_env)
    assert not (snapshot / "model.safetensors").exists() and not is_complete_snapshot(snapshot)
    blobs = Path(hf_env["HF_HUB_CACHE"]) / f"models--{REPO.replace('/', '--')}" / "blobs"
    assert hashlib.sha256(hub.repos[REPO]["model.safetensors"]).hexdigest() not in {b.name for b in blobs.iterdir()}
    row = next(r for r in json.loads(llmos("models", "--json", env=hf_env).stdout) if r["name"] == REPO)
    assert row["status"].startswith("partial")
    # once the hub serves the right bytes, pulling again repairs the cache
    hub.corrupt.clear()
    assert llmos("pull", REPO, env=hf_env).returncode == 0
    assert is_complete_snapshot(snapshot)


def test_unknown_repo_revision_and_unreachable_hub_say_what_to_do(hub, hf_env):
    result = llmos("pull", "nobody/nothing", env=hf_env)
    assert result.returncode == 2 and "no model 'nobody/nothing' on the Hub" in result.stderr
    assert "check the id" in result.stderr and "Traceback" not in result.stderr
    result = llmos("pull", REPO, "--revision", "v9", env=hf_env)
    assert result.returncode == 2 and "has no revision 'v9'" in result.stderr
    hub.server.shutdown()
    hub.server.server_close()
    result = llmos("pull", REPO, env=hf_env)
    assert result.returncode == 2 and "cannot reach the Hugging Face Hub" in result.stderr


def test_a_preset_name_pulls_its_repo_and_the_embedded_model_needs_none(hub, hf_env):
    assert pull_target("smollm2-360m") == "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert pull_target("org/name") == "org/name" and pull_target("smollm2-135m") is None
    with pytest.raises(InputError, match="unknown model"):
        pull_target("no-such-preset")
    hub.repos["HuggingFaceTB/SmolLM2-360M-Instruct"] = _tiny_repo()
    result = llmos("pull", "smollm2-360m", env=hf_env)
    assert result.returncode == 0, result.stderr
    assert "pulled HuggingFaceTB/SmolLM2-360M-Instruct" in result.stdout
    rows = json.loads(llmos("models", "--json", env=hf_env).stdout)
    assert next(r for r in rows if r["name"] == "smollm2-360m")["status"].startswith("pulled")
    assert not any(r["name"] == "HuggingFaceTB/SmolLM2-360M-Instruct" for r in rows)  # listed once, as the preset
    embedded = llmos("pull", "smollm2-135m", env=hf_env)
    assert embedded.returncode == 0 and "embedded model" in embedded.stdout and "nothing to pull" in embedded.stdout


def test_in_process_pull_lifts_offline_mode_only_for_the_pull(hub, tmp_path):
    from huggingface_hub import constants

    offline = constants.HF_HUB_OFFLINE
    report = pull(REPO, endpoint=hub.url, cache_dir=tmp_path / "hub", progress=False)
    assert report.folder == tmp_path / "hub" / "models--tiny-org--tiny-model" / "snapshots" / COMMIT
    assert constants.HF_HUB_OFFLINE == offline


def test_not_enough_disk_space_is_an_error_before_downloading(hub, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda _path: SimpleNamespace(total=10**9, used=10**9 - 10, free=10))
    with pytest.raises(ModelError, match="free some space or point HF_HUB_CACHE at a bigger disk"):
        pull(REPO, endpoint=hub.url, cache_dir=tmp_path / "hub", progress=False)
    assert not hub.gets("config.json")


def test_select_files_prefers_safetensors_and_skips_other_formats():
    names = ["config.json", "tokenizer.json", "tokenizer.model", "chat_template.jinja", "merges.txt",
             "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json",
             "pytorch_model.bin", "pytorch_model.bin.index.json", "model.onnx", "model.gguf", "flax_model.msgpack",
             "original/consolidated.00.pth", "onnx/model.onnx", ".gitattributes", "README.md", "training_args.bin"]
    assert select_files(names) == ["config.json", "tokenizer.json", "tokenizer.model", "chat_template.jinja",
                                   "merges.txt", "model-00001-of-00002.safetensors",
                                   "model-00002-of-00002.safetensors", "model.safetensors.index.json"]
    # no safetensors: the PyTorch weights, still not the other formats
    assert select_files(["config.json", "pytorch_model.bin", "training_args.bin", "model.onnx"]) == [
        "config.json", "pytorch_model.bin"]
