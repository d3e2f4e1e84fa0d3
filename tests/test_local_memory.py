"""Bounded memory in the built-in backend (issue 22): file ids resolved after the image-count check,
each source decoded once per request, stored responses' images under a byte budget."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from vizlab.local.config import BackendConfig
from vizlab.local.replies.responses import ResponseStore, StoredResponse
from vizlab.local.requests.images import load_images
from vizlab.local.requests.validation import FileImageURL, parse_chat_request

ROOT = Path(__file__).resolve().parent.parent
KEY = "memory-key"
SERVER = """
import sys, time
from vizlab.local import LocalBackend
backend = LocalBackend(api_key=sys.argv[1], deployments=("gpt-4o",)).start()
print(backend.url, flush=True)
sys.stdin.read()  # until the test closes stdin
backend.stop()
"""


def _noise_png(side: int) -> bytes:
    """A PNG of random pixels: it does not compress, so its size is about side * side * 3 bytes."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class _Files:
    """The Files store's one method that image references use, over a dict (a real store's contract)."""

    def __init__(self, **files: bytes) -> None:
        self.files = files

    def get_file(self, file_id: str) -> Any:
        return type("Record", (), {"data": self.files[file_id], "filename": file_id})()


def test_a_file_named_fifty_times_is_decoded_once_and_shared() -> None:
    png = _noise_png(64)
    parts = [{"type": "image_url", "image_url": {"url": FileImageURL("file-one"), "detail": "low"}} for _ in range(50)]
    chat = parse_chat_request({"messages": [{"role": "user", "content": parts}]}, api_version=None, require_model=False)
    decoded = load_images(chat, BackendConfig(max_images=50), None, _Files(**{"file-one": png}))
    assert len(decoded) == 50 and all(image is decoded[0] for image in decoded)
    assert all(ref.url is chat.images[0].url for ref in chat.images)  # one data URL, shared
    assert chat.images[0].url.startswith("data:image/png;base64,")


def test_a_data_url_cannot_pass_for_a_file_reference() -> None:
    parts = [{"type": "image_url", "image_url": {"url": "file:file-one"}}]
    chat = parse_chat_request({"messages": [{"role": "user", "content": parts}]}, api_version=None, require_model=False)
    with pytest.raises(Exception, match="expected a data URL"):
        load_images(chat, BackendConfig(), None, _Files(**{"file-one": _noise_png(8)}))


def _stored(n: int, url: str, previous: list[dict[str, Any]] | None = None) -> StoredResponse:
    turn = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url, "detail": "low"}}]}
    listed = {"type": "message", "content": [{"type": "input_image", "image_url": url, "file_id": None}]}
    return StoredResponse({"id": f"resp_{n}"}, [*(previous or []), turn], [listed])


def test_stored_images_stay_under_the_byte_budget_oldest_dropped_first() -> None:
    store = ResponseStore(image_bytes=3_000)
    for n in range(5):
        store.put(_stored(n, "data:image/png;base64," + str(n) * 1_000))
    assert store.image_bytes == 2 * 1_022  # a third 1,022-byte image would pass 3,000
    for gone in ("resp_0", "resp_1", "resp_2"):
        with pytest.raises(Exception, match="not found"):
            store.get(gone, "previous_response_id")
    assert store.get("resp_3").body["id"] == "resp_3"
    store.delete("resp_4")
    assert store.image_bytes == 1_022


def test_a_chain_of_follow_ups_stores_its_image_once() -> None:
    store = ResponseStore(image_bytes=10_000)
    first = _stored(0, "data:image/png;base64," + "A" * 4_000)
    store.put(first)
    copy = "data:image/png;base64," + "A" * 4_000  # an equal string, not the same object
    for n in range(1, 6):
        store.put(_stored(n, copy, previous=store.get(f"resp_{n - 1}").context))
    assert store.image_bytes == 4_022  # one image, held by six responses
    assert store.get("resp_0").body["id"] == "resp_0"
    assert store.get("resp_5").context[-1]["content"][0]["image_url"]["url"] is first.context[0]["content"][0]["image_url"]["url"]


def test_file_images_are_stored_as_references() -> None:
    store = ResponseStore(image_bytes=100)
    store.put(_stored(0, FileImageURL("file-" + "x" * 500)))
    assert store.image_bytes == 0


@pytest.mark.slow
def test_one_large_file_named_fifty_times_stays_under_200_mb() -> None:
    """A ~19 MB image uploaded once, then a 2 KB Responses request naming it 50 times: the service's
    400 for too many images, and the server's peak RSS grows by less than 200 MB (it reached 1.4 GB
    when each file_id became its own base64 copy before the count was checked)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen([sys.executable, "-c", SERVER, KEY], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True, env=env, cwd=ROOT) as child:  # fmt: skip
        try:
            assert child.stdout is not None and child.stdin is not None
            url = child.stdout.readline().strip()
            headers = {"api-key": KEY}
            png = _noise_png(2520)
            assert 18_000_000 < len(png) < 20_000_000
            warm = requests.post(f"{url}/openai/v1/responses", json={"model": "gpt-4o", "input": "hello"}, headers=headers,
                                 timeout=120)  # fmt: skip
            assert warm.status_code == 200
            time.sleep(0.2)
            before = _kib(child.pid, "VmRSS")
            upload = requests.post(f"{url}/openai/v1/files", files={"file": ("big.png", png, "image/png")},
                                   data={"purpose": "vision"}, headers=headers, timeout=120)  # fmt: skip
            assert upload.status_code == 200, upload.text
            file_id = upload.json()["id"]
            parts = [{"type": "input_image", "file_id": file_id, "detail": "low"} for _ in range(50)]
            body = {"model": "gpt-4o", "input": [{"role": "user", "content": [{"type": "input_text", "text": "Same?"}, *parts]}]}
            resp = requests.post(f"{url}/openai/v1/responses", json=body, headers=headers, timeout=120)
            assert resp.status_code == 400, resp.text
            assert "Too many images" in resp.json()["error"]["message"] or "maximum number of images" in resp.json()["error"]["message"]
            growth_mb = (_kib(child.pid, "VmHWM") - before) / 1024
            assert growth_mb < 200, f"peak RSS grew by {growth_mb:.0f} MB"
        finally:
            if child.stdin is not None:
                child.stdin.close()
            child.wait(timeout=60)


@pytest.mark.slow
def test_a_stored_file_image_is_read_again_by_a_follow_up() -> None:
    """The stored response keeps the file's reference: a follow-up reads the file again (billed as
    input again), and after the file is deleted the follow-up gets the file's 404."""
    from vizlab.local import LocalBackend

    headers = {"api-key": KEY}
    with LocalBackend(api_key=KEY, deployments=("gpt-4o",), stream_chunk_delay_s=0) as backend:
        url = backend.url + "/openai/v1"
        png = _noise_png(96)
        file_id = requests.post(f"{url}/files", files={"file": ("a.png", png, "image/png")}, data={"purpose": "vision"},
                                headers=headers, timeout=60).json()["id"]  # fmt: skip
        part = {"type": "input_image", "file_id": file_id, "detail": "low"}
        first = requests.post(f"{url}/responses", headers=headers, timeout=60, json={
            "model": "gpt-4o", "input": [{"role": "user", "content": [{"type": "input_text", "text": "Colours?"}, part]}]})
        assert first.status_code == 200, first.text
        assert backend.state is not None and backend.state.responses.image_bytes == 0  # a reference, not a copy
        follow = {"model": "gpt-4o", "previous_response_id": first.json()["id"], "input": "Again?"}
        again = requests.post(f"{url}/responses", headers=headers, timeout=60, json=follow)
        assert again.status_code == 200 and again.json()["usage"]["input_tokens"] > first.json()["usage"]["input_tokens"]
        assert requests.delete(f"{url}/files/{file_id}", headers=headers, timeout=60).status_code == 200
        gone = requests.post(f"{url}/responses", headers=headers, timeout=60, json=follow)
        assert gone.status_code == 404 and file_id in gone.json()["error"]["message"]
