"""Conversation state: message building in both formats, images stored once, the per-request
image limit, retention policies and their token effect, save/load/autosave, transcripts."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vizlab import images as vimages
from vizlab import tokens
from vizlab.conversation import (
    DEFAULT_MAX_IMAGES,
    Conversation,
    KeepAll,
    KeepLast,
    LowDetailOlder,
    Placeholder,
    Turn,
    convert_messages,
    parse_retention,
)
from vizlab.errors import (
    ConversationError,
    ImageError,
    ImageTooLargeError,
    TooManyImagesError,
    UnknownDetailError,
    redact,
)

# Built at run time so the repository's key scanner never sees a key-shaped literal.
FAKE_OPENAI_KEY = "sk-" + "test" * 6
FAKE_AZURE_KEY = "0123456789abcdef" * 2

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200), (200, 30, 200)]


@pytest.fixture
def enc(image_bytes: Callable[..., bytes]) -> Callable[..., Any]:
    """Factory: ``enc(w, h, i, name)`` is an EncodedImage of a distinct solid image."""

    def _make(width: int = 64, height: int = 48, i: int = 0, name: str | None = None) -> Any:
        colour = COLOURS[i % len(COLOURS)] if i < len(COLOURS) else (i % 256, (i * 7) % 256, (i * 13) % 256)
        return vimages.encode_image(image_bytes(width, height, "PNG", color=colour), name=name)

    return _make


def _snapshot(conv: Conversation) -> tuple[Any, ...]:
    return (list(conv.turns), dict(conv.images), dict(conv.urls), conv.system)


def _image_parts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        p
        for m in messages
        if isinstance(m["content"], list)
        for p in m["content"]
        if isinstance(p, dict) and p.get("type") == "image_url"
    ]


def _three_turn_chat(enc: Callable[..., Any]) -> tuple[Conversation, Any, Any]:
    a, b = enc(64, 48, 0, "a.png"), enc(32, 32, 1, "b.png")
    conv = Conversation("Be brief.")
    conv.add_user("What is this?", [a], detail="high")
    conv.add_assistant("A red square.")
    conv.add_user("And this?", [b], detail="low")
    conv.add_assistant("A green one.")
    conv.add_user("Which is bigger?")
    return conv, a, b


# --- message building -------------------------------------------------------------------------


def test_messages_current_format_exact(enc: Callable[..., Any]) -> None:
    conv, a, b = _three_turn_chat(enc)
    assert conv.messages() == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": a.data_url, "detail": "high"}},
            ],
        },
        {"role": "assistant", "content": "A red square."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And this?"},
                {"type": "image_url", "image_url": {"url": b.data_url, "detail": "low"}},
            ],
        },
        {"role": "assistant", "content": "A green one."},
        {"role": "user", "content": "Which is bigger?"},
    ]
    assert a.data_url.startswith("data:image/png;base64,")


def test_messages_preview2023_format_exact(enc: Callable[..., Any]) -> None:
    conv, a, b = _three_turn_chat(enc)
    b64 = lambda img: base64.b64encode(img.data).decode("ascii")  # noqa: E731
    assert conv.messages(format="preview2023") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": ["What is this?", {"image": b64(a)}]},
        {"role": "assistant", "content": "A red square."},
        {"role": "user", "content": ["And this?", {"image": b64(b)}]},
        {"role": "assistant", "content": "A green one."},
        {"role": "user", "content": "Which is bigger?"},
    ]


def test_no_system_message_and_image_only_turn(enc: Callable[..., Any]) -> None:
    a = enc(name="a.png")
    conv = Conversation()
    conv.add_user("", [a])
    assert conv.messages() == [{"role": "user", "content": [a.part("auto")]}]
    conv.system = "Applied later."
    assert conv.messages()[0] == {"role": "system", "content": "Applied later."}


def test_unknown_format_is_refused(enc: Callable[..., Any]) -> None:
    conv, _, _ = _three_turn_chat(enc)
    with pytest.raises(ConversationError, match="format='preview'"):
        conv.messages(format="preview")


# --- images stored once ----------------------------------------------------------------------


def test_image_reused_in_three_turns_is_stored_once(enc: Callable[..., Any], tmp_path: Path) -> None:
    a = enc(64, 48, 0, "a.png")
    path = tmp_path / "a.png"
    path.write_bytes(a.data)
    conv = Conversation()
    conv.add_user("one", [a])
    conv.add_assistant("ok")
    conv.add_user("two", [a.data])  # the same bytes, as bytes
    conv.add_assistant("ok")
    conv.add_user("three", path)  # the same bytes, as a bare path (not iterated)
    assert len(conv.images) == 1
    assert list(conv.images) == [a.sha256]
    parts = _image_parts(conv.messages())
    assert len(parts) == 3
    assert {p["image_url"]["url"] for p in parts} == {a.data_url}


def test_any_image_source_is_accepted(image_bytes: Callable[..., bytes]) -> None:
    from PIL import Image

    data = image_bytes(64, 48, "PNG")
    record = {"name": "up.png", "type": "image/png", "size": len(data), "content": memoryview(data), "last_modified": 0}
    conv = Conversation()
    conv.add_user("upload", record)  # one FileUpload record, bare
    conv.add_user("uploads", (record,))  # FileUpload.value is a tuple of records
    conv.add_user("data url", ["data:image/png;base64," + base64.b64encode(data).decode()])
    conv.add_user("pil", Image.new("RGB", (20, 10)))
    assert len(conv.images) == 2  # the PNG (three ways) and the PIL image
    assert conv.images[conv.turns[0].images[0]].name == "up.png"
    assert len(_image_parts(conv.messages())) == 4


def test_fit_shrinks_images_before_they_are_stored(image_bytes: Callable[..., bytes], tmp_path: Path) -> None:
    conv = Conversation(fit=(256, 256))
    conv.add_user("big", image_bytes(1024, 512, "PNG"))
    img = next(iter(conv.images.values()))
    assert (img.width, img.height, img.original_width, img.original_height) == (256, 128, 1024, 512)
    loaded = Conversation.load(conv.save(tmp_path / "c.json"))
    assert loaded.fit == (256, 256) and loaded == conv


@pytest.mark.parametrize("fit", ["medium", (0, 10), [512, 512]])
def test_bad_fit_is_refused_up_front(fit: Any) -> None:
    with pytest.raises(ConversationError, match="fit="):
        Conversation(fit=fit)


def test_http_urls_are_kept_as_urls_keyed_by_url_hash() -> None:
    import hashlib

    url = "https://example.com/pics/cat.jpg"
    conv = Conversation()
    turn = conv.add_user("Look", [url], detail="low")
    key = hashlib.sha256(url.encode()).hexdigest()
    assert turn.images == [key]
    assert conv.urls == {key: url}
    assert conv.images == {}
    assert conv.messages()[0]["content"][1] == {"type": "image_url", "image_url": {"url": url, "detail": "low"}}


# --- validation before mutation ---------------------------------------------------------------


@pytest.mark.parametrize("detail", ["HIGH", "medium", "", None])
def test_unknown_detail_raises_and_changes_nothing(enc: Callable[..., Any], detail: Any) -> None:
    conv = Conversation()
    before = _snapshot(conv)
    with pytest.raises(UnknownDetailError) as info:
        conv.add_user("hi", [enc()], detail=detail)
    assert info.value.detail == detail
    assert "'low', 'high' or 'auto'" in str(info.value)
    assert _snapshot(conv) == before


def test_eleven_images_in_one_turn_is_refused_and_nothing_changes(enc: Callable[..., Any]) -> None:
    imgs = [enc(8, 8, i) for i in range(11)]
    conv = Conversation()
    conv.add_user("first", [imgs[0]])
    before = _snapshot(conv)
    with pytest.raises(TooManyImagesError) as info:
        conv.add_user("eleven", imgs)
    assert (info.value.count, info.value.limit) == (11, 10)
    assert "11 images" in str(info.value) and "10" in str(info.value) and "max_images=" in str(info.value)
    assert _snapshot(conv) == before
    assert DEFAULT_MAX_IMAGES == 10


def test_limit_counts_images_resent_from_earlier_turns(enc: Callable[..., Any]) -> None:
    imgs = [enc(8, 8, i) for i in range(11)]
    conv = Conversation()
    conv.add_user("ten", imgs[:10])
    conv.add_assistant("ok")
    before = _snapshot(conv)
    with pytest.raises(TooManyImagesError) as info:
        conv.add_user("one more", [imgs[10]])
    assert (info.value.count, info.value.limit) == (11, 10)
    message = str(info.value)
    assert "keep_all" in message and "keep_last" in message and "max_images=" in message
    assert _snapshot(conv) == before
    # Under keep_last:1 only the newest turn's image is sent, so the same turn is fine.
    conv.retention = "keep_last:1"
    conv.add_user("one more", [imgs[10]])
    assert len(_image_parts(conv.messages())) == 1
    # ...and switching back makes the request too big: messages() refuses, with the numbers.
    with pytest.raises(TooManyImagesError, match="11 images") as again:
        conv.messages(retention="keep_all")
    assert again.value.count == 11


def test_max_images_50_allows_eleven(enc: Callable[..., Any]) -> None:
    conv = Conversation(max_images=50)
    conv.add_user("eleven", [enc(8, 8, i) for i in range(11)])
    assert len(_image_parts(conv.messages())) == 11


def test_a_bad_image_among_good_ones_changes_nothing(enc: Callable[..., Any]) -> None:
    conv = Conversation()
    before = _snapshot(conv)
    with pytest.raises(ImageError):
        conv.add_user("two", [enc(), b"this is not an image"])
    assert _snapshot(conv) == before


def test_max_image_bytes_refuses_a_large_encoded_image(enc: Callable[..., Any]) -> None:
    big = enc(64, 48)
    conv = Conversation(max_image_bytes=big.nbytes - 1)
    with pytest.raises(ImageTooLargeError) as info:
        conv.add_user("big", [big])
    assert info.value.limit == big.nbytes - 1
    assert len(conv) == 0


@pytest.mark.parametrize("bad", [0, -1, True, "10"])
def test_max_images_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(ConversationError, match="max_images"):
        Conversation(max_images=bad)


# --- retention policies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("keep_all", KeepAll()),
        ("keep_last:2", KeepLast(2)),
        ("keep_last", KeepLast(1)),
        ("low_detail_older:1", LowDetailOlder(1)),
        ("placeholder:3", Placeholder(3)),
        (" Keep-Last:2 ", KeepLast(2)),
    ],
)
def test_parse_retention(spec: str, expected: Any) -> None:
    policy = parse_retention(spec)
    assert policy == expected
    assert parse_retention(policy.name) == policy


@pytest.mark.parametrize("spec", ["keep_some", "keep_last:two", "keep_last:0", "keep_all:2", "placeholder:-1", 3])
def test_parse_retention_refuses_nonsense(spec: Any) -> None:
    with pytest.raises(ConversationError, match="retention|n must be"):
        parse_retention(spec)


def _photo_chat(enc: Callable[..., Any], retention: str = "keep_all", turns: int = 3) -> tuple[Conversation, list[Any]]:
    """One new 1024x1024 photo per turn at detail high, with a reply after each."""
    photos = [enc(1024, 1024, i, f"photo{i + 1}.png") for i in range(turns)]
    conv = Conversation(retention=retention)
    for i, photo in enumerate(photos):
        conv.add_user(f"Q{i + 1}", [photo], detail="high")
        conv.add_assistant(f"A{i + 1}")
    return conv, photos


def test_keep_all_sends_every_image(enc: Callable[..., Any]) -> None:
    conv, photos = _photo_chat(enc)
    parts = _image_parts(conv.messages())
    assert [p["image_url"]["url"] for p in parts] == [p.data_url for p in photos]
    assert {p["image_url"]["detail"] for p in parts} == {"high"}


def test_keep_last_drops_older_images_keeps_text(enc: Callable[..., Any]) -> None:
    conv, photos = _photo_chat(enc)
    msgs = conv.messages(retention="keep_last:1")
    assert msgs[0] == {"role": "user", "content": "Q1"}
    assert msgs[2] == {"role": "user", "content": "Q2"}
    assert msgs[4]["content"] == [{"type": "text", "text": "Q3"}, photos[2].part("high")]
    two = conv.messages(retention=KeepLast(2))
    assert [p["image_url"]["url"] for p in _image_parts(two)] == [photos[1].data_url, photos[2].data_url]


def test_low_detail_older_downgrades_older_images(enc: Callable[..., Any]) -> None:
    conv, photos = _photo_chat(enc)
    msgs = conv.messages(retention="low_detail_older:1")
    assert [p["image_url"]["detail"] for p in _image_parts(msgs)] == ["low", "low", "high"]
    assert msgs[0]["content"][1] == photos[0].part("low")


def test_placeholder_replaces_older_images_with_text(enc: Callable[..., Any]) -> None:
    conv, photos = _photo_chat(enc)
    msgs = conv.messages(retention="placeholder:1")
    assert msgs[0]["content"] == [
        {"type": "text", "text": "Q1"},
        {"type": "text", "text": "[image: photo1.png, 1024x1024, sent earlier]"},
    ]
    assert msgs[4]["content"][1] == photos[2].part("high")
    preview = conv.messages(format="preview2023", retention="placeholder:1")
    assert preview[0]["content"] == ["Q1", "[image: photo1.png, 1024x1024, sent earlier]"]


def test_stored_images_survive_any_policy(enc: Callable[..., Any]) -> None:
    conv, photos = _photo_chat(enc, retention="keep_last:1")
    assert set(conv.images) == {p.sha256 for p in photos}


def test_cumulative_tokens_by_policy_match_the_image_rule(enc: Callable[..., Any]) -> None:
    conv, _ = _photo_chat(enc)
    high = tokens.image_tokens(1024, 1024, detail="high", model="gpt-4o")
    low = tokens.image_tokens(1024, 1024, detail="low", model="gpt-4o")
    # OpenAI 'Images and vision' guide worked example (see vizlab.tokens): 1024x1024 high = 765.
    assert (high, low) == (765, 85)
    keep_all = conv.cumulative_tokens("keep_all")
    low_older = conv.cumulative_tokens("low_detail_older:1")
    placeholder = conv.cumulative_tokens("placeholder:1")
    keep_last = conv.cumulative_tokens("keep_last:1")
    assert len(keep_all) == 3
    # The text is identical under every policy, so differences are image tokens (and the
    # placeholder's few text tokens), exactly.
    assert [a - b for a, b in zip(keep_all, keep_last)] == [0, high, 2 * high]
    assert [a - b for a, b in zip(low_older, keep_last)] == [0, low, 2 * low]
    ph = tokens.count_text_tokens("[image: photo1.png, 1024x1024, sent earlier]")
    assert [a - b for a, b in zip(placeholder, keep_last)] == [0, ph, 2 * ph]
    for k in range(3):
        assert keep_all[k] >= low_older[k] >= placeholder[k] >= keep_last[k]
    # The default is the conversation's own policy; running_total sums the requests.
    assert conv.cumulative_tokens() == keep_all
    assert conv.cumulative_tokens(running_total=True) == [keep_all[0], sum(keep_all[:2]), sum(keep_all)]


def test_estimate_next_uses_the_policy_and_model(enc: Callable[..., Any]) -> None:
    conv, _ = _photo_chat(enc, retention="low_detail_older:1")
    est = conv.estimate_next(max_tokens=100)
    assert est.model == "gpt-4o"
    assert est.image_tokens == 765 + 2 * 85
    assert est.completion_tokens == 100
    # The next request carries the last reply too; without it, it is the last request again.
    assert est.prompt_tokens > conv.cumulative_tokens()[-1]
    conv.pop_last()
    assert conv.estimate_next().prompt_tokens == conv.cumulative_tokens()[-1]


def test_cost_by_turn_grows_and_prefers_reported_usage(enc: Callable[..., Any]) -> None:
    conv, _ = _photo_chat(enc, turns=4)
    rows = conv.cost_by_turn()
    assert [r["turn"] for r in rows] == [1, 2, 3, 4]
    assert [r["images_sent"] for r in rows] == [1, 2, 3, 4]
    est = [r["estimated_prompt_tokens"] for r in rows]
    assert est == conv.cumulative_tokens()
    assert all(later - earlier > 700 for earlier, later in zip(est, est[1:]))  # one more photo each
    assert [r["estimated_image_tokens"] for r in rows] == [765, 1530, 2295, 3060]
    cum = [r["cumulative_prompt_tokens"] for r in rows]
    assert cum == [sum(est[: k + 1]) for k in range(4)]
    costs = [r["cost"] for r in rows]
    assert all(c is not None and c > 0 for c in costs)
    assert costs == sorted(costs)
    assert rows[-1]["cumulative_cost"] == pytest.approx(sum(costs))
    assert {r["source"] for r in rows} == {"estimated"}

    # A reply that carried usage: the row reports it, the estimate stays beside it.
    conv.add_user("Q5", [enc(1024, 1024, 4, "photo5.png")], detail="high")
    conv.add_assistant("A5", usage={"prompt_tokens": 4000, "completion_tokens": 20, "total_tokens": 4020})
    last = conv.cost_by_turn()[-1]
    assert (last["source"], last["prompt_tokens"], last["completion_tokens"]) == ("reported", 4000, 20)
    assert last["reported_prompt_tokens"] == 4000
    assert last["estimated_image_tokens"] == 5 * 765
    from vizlab.tokens.pricing import DEFAULT_PRICES

    assert last["cost"] == pytest.approx(DEFAULT_PRICES.cost(4000, 20, model="gpt-4o").total)


def test_cost_by_turn_keeps_a_recorded_cost(enc: Callable[..., Any]) -> None:
    conv = Conversation()
    conv.add_user("hi")
    conv.add_assistant("hello", cost={"input": 0.5, "output": 0.25, "batch": False, "model": "gpt-4o"})
    assert conv.cost_by_turn()[0]["cost"] == pytest.approx(0.75)


# --- save / load / autosave -------------------------------------------------------------------


def _rich_chat(enc: Callable[..., Any], **kw: Any) -> tuple[Conversation, list[Any]]:
    a, b = enc(64, 48, 0, "a.png"), enc(40, 30, 1, "b.png")
    conv = Conversation("Be brief. Ünïcödé ok.", retention="low_detail_older:1", max_images=12, **kw)
    conv.add_user("What is this?", [a], detail="high")
    conv.add_assistant(
        "A red square.",
        finish_reason="stop",
        usage=tokens.Usage(900, 12, 912),
        estimate=conv.estimate_next().as_usage(),
        latency_s=0.25,
        model="gpt-4o",
    )
    conv.add_user("And these two?", [a, b, "https://example.com/c.png"], detail="low")
    conv.add_assistant("Same red square, a green one, and c.")
    return conv, [a, b]


def test_save_load_round_trip(enc: Callable[..., Any], tmp_path: Path) -> None:
    conv, (a, b) = _rich_chat(enc)
    path = conv.save(tmp_path / "chat.json")
    assert path == tmp_path / "chat.json"
    loaded = Conversation.load(path)
    assert loaded == conv
    assert loaded.images[a.sha256].data == a.data
    assert loaded.images[b.sha256] == b
    assert loaded.messages() == conv.messages()
    assert loaded.retention == LowDetailOlder(1)
    assert (loaded.max_images, loaded.system) == (12, "Be brief. Ünïcödé ok.")
    assert loaded.turns[1].meta["usage"] == {"prompt_tokens": 900, "completion_tokens": 12, "total_tokens": 912, "details": {}}
    assert [f.name for f in tmp_path.iterdir()] == ["chat.json"]  # no temporary file left


def test_saved_file_holds_each_image_once(enc: Callable[..., Any], tmp_path: Path) -> None:
    conv, (a, b) = _rich_chat(enc)
    assert len(_image_parts(conv.messages())) == 4  # a is sent twice
    text = conv.save(tmp_path / "chat.json").read_text(encoding="utf-8")
    for img in (a, b):
        assert text.count(base64.b64encode(img.data).decode("ascii")) == 1
    doc = json.loads(text)
    assert doc["version"] == 1 and doc["format"] == "vizlab.conversation"
    assert set(doc["images"]) == {a.sha256, b.sha256}
    assert doc["images"][a.sha256]["mime"] == "image/png"


def test_saved_file_has_no_key_like_strings(enc: Callable[..., Any], tmp_path: Path) -> None:
    conv = Conversation()
    conv.add_user("hi")
    conv.add_assistant(
        "hello",
        raw_headers={"api-key": FAKE_AZURE_KEY, "authorization": "Bearer " + FAKE_OPENAI_KEY},
        note=f"failed once with key {FAKE_OPENAI_KEY}",
    )
    text = conv.save(tmp_path / "chat.json").read_text(encoding="utf-8")
    assert FAKE_OPENAI_KEY not in text and FAKE_AZURE_KEY not in text
    assert redact(text) == text


def test_autosave_survives_a_kill(enc: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "auto" / "chat.json"
    conv = Conversation("sys", autosave=path)
    assert Conversation.load(path) == conv
    steps: list[Callable[[], object]] = [
        lambda: conv.add_user("look", [enc(64, 48, 0, "a.png")], detail="high"),
        lambda: conv.add_assistant("red", usage={"prompt_tokens": 100, "completion_tokens": 2, "total_tokens": 102}),
        lambda: conv.add_user("again?", [enc(64, 48, 0, "a.png"), enc(64, 48, 1, "b.png")]),
        lambda: setattr(conv, "system", "new system"),
        lambda: setattr(conv, "retention", "placeholder:1"),
        conv.pop_last,
        conv.clear,
    ]
    for step in steps:
        step()
        # A new object reading the file, as after a kernel kill: nothing lost.
        assert Conversation.load(path) == conv
    assert [p.name for p in path.parent.iterdir()] == ["chat.json"]
    resumed = Conversation.load(path, autosave=True)
    resumed.add_user("resumed", meta={"source": "widget", "at": (1, 2)})
    assert Conversation.load(path).turns[-1].text == "resumed"
    assert Conversation.load(path).turns[-1].meta == {"source": "widget", "at": [1, 2]}


def test_autosave_never_overwrites_an_existing_chat(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    first = Conversation.open(path, "sys", retention="keep_last:2")
    first.add_user("before the kill")
    text = path.read_text(encoding="utf-8")
    # Re-running `Conversation(autosave=path)` would wipe the chat: refused, file untouched.
    with pytest.raises(ConversationError, match="already exists"):
        Conversation(autosave=path)
    assert path.read_text(encoding="utf-8") == text
    # Re-running `Conversation.open(path)` resumes it, and keeps saving there.
    again = Conversation.open(path, "ignored")
    assert again == first and again.system == "sys" and again.retention == KeepLast(2)
    again.add_assistant("after")
    assert len(Conversation.load(path)) == 2


def test_damaged_file_gives_a_clear_error(enc: Callable[..., Any], tmp_path: Path) -> None:
    conv, _ = _rich_chat(enc)
    path = conv.save(tmp_path / "chat.json")
    path.write_text(path.read_text(encoding="utf-8")[:200], encoding="utf-8")  # truncated
    with pytest.raises(ConversationError) as info:
        Conversation.load(path)
    assert str(path) in str(info.value)
    assert "damaged" in str(info.value) and "not valid JSON" in str(info.value)


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda d: d.update(version=99), "version 99"),
        (lambda d: d.update(format="other"), "not a vizlab conversation"),
        (lambda d: d["turns"][0].pop("text"), "damaged"),
        (lambda d: d["turns"][0].update(detail="medium"), "medium"),
        (lambda d: next(iter(d["images"].values())).update(data="AAAA"), "SHA-256"),
        (lambda d: next(iter(d["images"].values())).update(data="not base64!"), "damaged"),
        (lambda d: d["turns"][0].update(images=["f" * 64]), "not stored"),
        (lambda d: d.update(turns={"a": 1}), "damaged"),
    ],
)
def test_invalid_file_contents_are_refused(
    enc: Callable[..., Any], tmp_path: Path, mutate: Callable[[dict[str, Any]], object], words: str
) -> None:
    conv, _ = _rich_chat(enc)
    path = conv.save(tmp_path / "chat.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    mutate(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ConversationError) as info:
        Conversation.load(path)
    assert str(path) in str(info.value) and words in str(info.value)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConversationError, match="No conversation file"):
        Conversation.load(tmp_path / "nope.json")


# --- transcripts ------------------------------------------------------------------------------


def test_to_markdown_without_image_dir(enc: Callable[..., Any]) -> None:
    conv, (a, b) = _rich_chat(enc)
    md = conv.to_markdown()
    for text in ("Be brief.", "What is this?", "A red square.", "And these two?", "### User", "### Assistant"):
        assert text in md
    assert "[image: a.png, 64x48, image/png" in md
    assert "![c.png](https://example.com/c.png)" in md
    assert "900 prompt + 12 completion tokens" in md
    assert conv._repr_markdown_() == md


def test_to_markdown_writes_each_image_once(enc: Callable[..., Any], tmp_path: Path) -> None:
    conv, (a, b) = _rich_chat(enc)
    md = conv.to_markdown(image_dir=tmp_path / "img")
    files = sorted((tmp_path / "img").iterdir())
    assert len(files) == 2  # a is in two turns, written once
    assert {f.read_bytes() for f in files} == {a.data, b.data}
    link = (tmp_path / "img" / f"{a.sha256[:16]}.png").as_posix()
    assert md.count(f"![a.png]({link})") == 2
    mtimes = [f.stat().st_mtime_ns for f in files]
    conv.to_markdown(image_dir=tmp_path / "img")
    assert [f.stat().st_mtime_ns for f in files] == mtimes  # unchanged files are not rewritten


# --- format conversion ------------------------------------------------------------------------


def test_convert_messages_round_trip(enc: Callable[..., Any]) -> None:
    conv, a, b = _three_turn_chat(enc)
    current = conv.messages()
    preview = convert_messages(current, "preview2023")
    assert preview == conv.messages(format="preview2023")
    back = convert_messages(preview, "current")
    assert [m["role"] for m in back] == [m["role"] for m in current]
    texts = lambda ms: [p["text"] if isinstance(p, dict) else p for m in ms for p in (m["content"] if isinstance(m["content"], list) else [m["content"]]) if not isinstance(p, dict) or p.get("type") == "text"]  # noqa: E731
    assert texts(back) == texts(current)
    urls = [p["image_url"]["url"] for p in _image_parts(back)]
    assert [vimages.decode_data_url(u) for u in urls] == [("image/png", a.data), ("image/png", b.data)]
    # detail does not exist in the 2023 preview format: it comes back as the service default.
    assert [p["image_url"]["detail"] for p in _image_parts(back)] == ["auto", "auto"]
    assert convert_messages(current, "current") == current
    assert convert_messages(preview, "preview2023") == preview


def test_convert_messages_to_preview_refuses_http_urls() -> None:
    msgs = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.org/a.png?sig=s"}}]}]
    with pytest.raises(ConversationError, match="not a data URL"):
        convert_messages(msgs, "preview2023")
    conv = Conversation()
    conv.add_user("see", ["https://x.org/a.png"])
    with pytest.raises(ConversationError, match="preview2023"):
        conv.messages(format="preview2023")


def test_convert_messages_refuses_bad_input() -> None:
    with pytest.raises(ConversationError, match="to='v1'"):
        convert_messages([], "v1")
    with pytest.raises(ConversationError, match="base64"):
        convert_messages([{"role": "user", "content": [{"image": "!!"}]}], "current")
    with pytest.raises(UnknownDetailError):
        convert_messages([], "current", detail="ultra")


# --- undo, new chat, repr ---------------------------------------------------------------------


def test_pop_last_undoes_and_prunes_unused_images(enc: Callable[..., Any]) -> None:
    conv, a, b = _three_turn_chat(enc)
    assert len(conv) == 5
    last = conv.pop_last()
    assert (last.role, last.text) == ("user", "Which is bigger?")
    conv.pop_last()
    conv.pop_last()  # the turn that used b
    assert set(conv.images) == {a.sha256}
    assert len(conv) == 2
    conv.pop_last()
    conv.pop_last()
    assert conv.images == {} and len(conv) == 0
    with pytest.raises(ConversationError, match="no turns to undo"):
        conv.pop_last()


def test_clear_keeps_system_and_settings(enc: Callable[..., Any]) -> None:
    conv = Conversation("sys", model="gpt-4o-mini", max_images=20, retention="keep_last:2")
    conv.add_user("hi", [enc(), "https://example.com/a.png"])
    conv.clear()
    assert (len(conv), conv.images, conv.urls) == (0, {}, {})
    assert (conv.system, conv.model, conv.max_images, conv.retention) == ("sys", "gpt-4o-mini", 20, KeepLast(2))


def test_repr_is_short(enc: Callable[..., Any]) -> None:
    conv, _, _ = _three_turn_chat(enc)
    assert repr(conv) == "<Conversation 5 turns, 2 images stored, model='gpt-4o', retention='keep_all'>"


def test_repr_says_one_turn_and_one_image_in_the_singular(enc: Callable[..., Any]) -> None:
    conv = Conversation()
    assert repr(conv).startswith("<Conversation 0 turns, 0 images stored,")
    conv.add_user("hi", [enc()])
    assert repr(conv).startswith("<Conversation 1 turn, 1 image stored,")


def test_convert_error_never_shows_a_url_query() -> None:
    url = "https://acct.blob.core.windows.net/c/cat.png?sv=2024-01-01&sig=SECRETSIGNATURE"
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
    with pytest.raises(ConversationError) as info:
        convert_messages(messages, "preview2023")
    assert "cat.png" in str(info.value) and "SECRET" not in str(info.value) and "sig=" not in str(info.value)


def test_turn_defaults() -> None:
    turn = Turn("user", "hi")
    assert (turn.images, turn.detail, turn.meta) == ([], "auto", {})
    assert turn.created.endswith("+00:00")


def test_add_user_meta_must_be_a_dict() -> None:
    with pytest.raises(ConversationError, match="meta must be a dict"):
        Conversation().add_user("hi", meta=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("messages", [None, "hello", {"role": "user", "content": "hi"}])
def test_convert_messages_refuses_what_is_not_a_list(messages: Any) -> None:
    with pytest.raises(ConversationError, match="list of message dicts"):
        convert_messages(messages, "current")


# --- issue 14: totals from stored sizes, signed URLs never on disk, no stale temp files ------


def _reference_estimates(conv: Conversation, retention: str) -> list[Any]:
    """Today's algorithm, spelt out: the whole message list of each request, estimated as sent."""
    out = []
    for i, turn in enumerate(conv.turns):
        if turn.role != "user":
            continue
        prefix = Conversation(conv.system, model=conv.model, retention=retention, max_images=1000)
        prefix.images, prefix.urls, prefix.turns = conv.images, conv.urls, conv.turns[: i + 1]
        out.append(tokens.estimate_request(prefix.messages(), model=conv.model))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("retention", ["keep_all", "keep_last:2", "low_detail_older:1", "placeholder:1"])
def test_totals_from_stored_sizes_equal_estimating_every_request(
    image_bytes: Callable[..., bytes], retention: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conv = Conversation("Be brief.", retention=retention, max_images=1000)
    sizes = [(640, 480), (2000, 1000), (64, 48), (1024, 1024), (300, 900)]
    for n in range(8):
        w, h = sizes[n % len(sizes)]
        images: list[Any] = [image_bytes(w + n, h, "PNG", color=(n * 20, 40, 90))]
        if n == 3:
            images.append("https://example.com/photos/cat.png?sv=2024-11-04&sig=SECRET")
        conv.add_user(f"Question {n}: what changed?", images, detail=("high", "low", "auto")[n % 3])
        conv.add_assistant(f"Answer {n}.", name="bot" if n == 2 else None)
    expected = _reference_estimates(conv, retention)
    decodes: list[str] = []
    for name in ("decode_data_url", "image_size", "encode_image"):
        original = getattr(vimages, name)
        monkeypatch.setattr(
            vimages, name, lambda *a, _o=original, _n=name, **k: (decodes.append(_n), _o(*a, **k))[1]
        )
    got = [est for _, _, est in conv._request_estimates(parse_retention(retention))]
    assert [e.prompt_tokens for e in got] == [e.prompt_tokens for e in expected]
    assert [e.image_tokens for e in got] == [e.image_tokens for e in expected]
    assert [e.text_tokens for e in got] == [e.text_tokens for e in expected]
    assert [e.overhead_tokens for e in got] == [e.overhead_tokens for e in expected]
    assert [e.unsized_images for e in got] == [e.unsized_images for e in expected]
    assert [[(b.original, b.detail_used, b.tokens) for b in e.images] for e in got] == [
        [(b.original, b.detail_used, b.tokens) for b in e.images] for e in expected]
    assert [e.cost.total if e.cost else None for e in got] == [e.cost.total if e.cost else None for e in expected]
    assert conv.cumulative_tokens() == [e.prompt_tokens for e in expected]
    assert [r["estimated_prompt_tokens"] for r in conv.cost_by_turn()] == [e.prompt_tokens for e in expected]
    assert decodes == []  # sizes came from the stored images, nothing was re-encoded or decoded


@pytest.mark.parametrize("retention", ["keep_all", "keep_last:2", "placeholder:1"])
def test_totals_build_each_message_a_bounded_number_of_times(image_bytes: Callable[..., bytes], retention: str) -> None:
    """Issue 23: linear totals: each message built at most twice (one of the latest image turns,
    then older), however long the chat, not once per later request."""
    conv = Conversation("Be brief.", retention=retention, max_images=1000)
    for n in range(40):
        conv.add_user(f"Q{n}", [image_bytes(64 + n, 48, "PNG")] if n % 3 else [], detail="low")
        conv.add_assistant(f"A{n}.")
    built: list[int] = []
    original = conv._build
    conv._build = lambda turns, *a, **k: (built.append(len(turns)), original(turns, *a, **k))[1]  # type: ignore[method-assign]
    rows = conv.cost_by_turn()
    assert len(rows) == 40
    assert max(built) <= 1 and len(built) <= 2 * len(conv.turns) + 1


def test_a_policy_with_only_a_plan_still_gets_exact_totals(image_bytes: Callable[..., bytes]) -> None:
    from vizlab.conversation.retention import ImageAction, RetentionPolicy

    class EveryOther(RetentionPolicy):
        name = "every_other"

        def plan(self, turns: Any) -> list[list[ImageAction]]:
            return [[ImageAction(k, "send" if i % 4 == 0 else "drop", t.detail) for k in t.images]
                    for i, t in enumerate(turns)]

    conv = Conversation("Be brief.", retention=EveryOther(), max_images=1000)
    for n in range(5):
        conv.add_user(f"Q{n}", [image_bytes(100 + n, 80, "PNG")], detail="high")
        conv.add_assistant(f"A{n}.")
    expected = _reference_estimates(conv, EveryOther())
    assert conv.cumulative_tokens() == [e.prompt_tokens for e in expected]


SAS_IMAGE = "https://acct.blob.core.windows.net/photos/cat.png?sv=2024-11-04&sp=r&se=2030-01-01&sig=c2VjcmV0U0lH&w=200"


def test_signed_urls_never_reach_disk_and_are_asked_back_after_a_load(tmp_path: Path) -> None:
    conv = Conversation("sys")
    conv.add_user("What is this?", [SAS_IMAGE, "https://example.com/plain.png?w=3"])
    assert _image_parts(conv.messages())[0]["image_url"]["url"] == SAS_IMAGE  # in memory: the full URL
    path = conv.save(tmp_path / "chat.json")
    saved = path.read_text()
    markdown = conv.to_markdown()
    for text in (saved, markdown):
        assert "c2VjcmV0U0lH" not in text and "sig=" not in text and "sv=" not in text and "se=" not in text
        assert "https://acct.blob.core.windows.net/photos/cat.png?w=200" in text
        assert "https://example.com/plain.png?w=3" in text  # a URL with no secret is kept as it is
    with pytest.warns(UserWarning, match=r"1 image URL.*cat\.png.*resupply_url"):
        loaded = Conversation.load(path)
    with pytest.raises(ConversationError, match="resupply_url"):
        loaded.messages()
    with pytest.raises(ConversationError, match="no image of this conversation"):
        loaded.resupply_url("https://acct.blob.core.windows.net/photos/dog.png?sig=x")
    fresh = SAS_IMAGE.replace("c2VjcmV0U0lH", "bmV3U0lH")  # a new SAS token for the same blob
    loaded.resupply_url(fresh)
    urls = [p["image_url"]["url"] for p in _image_parts(loaded.messages())]
    assert urls == [fresh, "https://example.com/plain.png?w=3"]
    assert not loaded.urls_to_resupply


@pytest.mark.slow
def test_a_save_killed_mid_write_leaves_no_temp_file_after_the_next_open(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "chat.json"
    Conversation("sys", autosave=path)
    # A real process, killed with SIGKILL while its save is between writing the temp file and
    # renaming it over the chat (os.replace is made to hang there, so the kill lands mid-save).
    code = (
        "import os, sys, time\n"
        "from vizlab.conversation import Conversation\n"
        "conv = Conversation.load(sys.argv[1], autosave=True)\n"
        "os.replace = lambda *a: (print('writing', flush=True), time.sleep(600))\n"
        "conv.add_user('hello')\n"
    )
    with subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "writing"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    deadline = time.monotonic() + 5
    while not list(tmp_path.glob(".chat.json.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(list(tmp_path.glob(".chat.json.*.tmp"))) == 1  # the kill left its temp file
    conv = Conversation.open(path)  # the next open cleans up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.json"]
    assert conv.system == "sys"  # and the chat is the last complete save
