"""The local analyst: detail-aware OCR, colours, shapes, intents, statelessness, determinism."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from vizlab.local import _deps
from vizlab.local.analyst import IDENTITY, NO_IMAGE_ANSWER, Analyst, ImageFacts
from vizlab.local.analyst.answer import detect_intent


@pytest.fixture(scope="module")
def analyst() -> Analyst:
    return Analyst()


def font(size: int) -> Any:
    return ImageFont.load_default(size=size)


def small_text_image() -> Image.Image:
    """2000x1500 white, two words 14 px high: ~3.6 px at low detail, ~7 px at high."""
    img = Image.new("RGB", (2000, 1500), "white")
    draw = ImageDraw.Draw(img)
    draw.text((300, 600), "ZEBRA 7391", fill="black", font=font(14))
    draw.text((1200, 1100), "quiet harbor", fill="black", font=font(14))
    return img


def shapes_image() -> Image.Image:
    img = Image.new("RGB", (800, 600), "white")
    draw = ImageDraw.Draw(img)
    draw.ellipse((50, 50, 200, 200), fill=(220, 20, 20))
    draw.ellipse((300, 60, 420, 180), fill=(220, 20, 20))
    draw.rectangle((500, 300, 700, 450), fill=(20, 40, 220))
    draw.polygon([(100, 560), (300, 560), (200, 360)], fill=(20, 170, 40))
    draw.text((450, 100), "HELLO 42", fill="black", font=font(48))
    return img


def url_of(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def ask(question: str, *images: Image.Image, detail: str = "high") -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": question}]
    parts += [{"type": "image_url", "image_url": {"url": url_of(i), "detail": detail}} for i in images]
    return [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": parts}]


@pytest.mark.slow
def test_high_detail_reads_small_text_that_low_cannot(analyst: Analyst) -> None:
    img = small_text_image()
    low = analyst.look(img, detail="low")
    high = analyst.look(img, detail="high")
    assert low.view_size == (512, 384) and low.tiles == 0
    assert high.view_size == (1024, 768) and high.tiles == 4  # vizlab.tokens.scale_for_high
    squeezed = lambda lines: [t.replace(" ", "") for t in lines]  # OCR may drop a space  # noqa: E731
    assert "ZEBRA7391" not in squeezed(low.text_lines)
    assert squeezed(high.text_lines) == ["ZEBRA7391", "quietharbor"]
    low_answer = analyst.answer(ask("What does it say?", img, detail="low"))
    high_answer = analyst.answer(ask("What does it say?", img, detail="high"))
    assert "ZEBRA" not in low_answer and 'detail "high"' in low_answer
    assert 'Text I can read: "ZEBRA 7391 / quiet' in high_answer


@pytest.mark.slow
def test_large_text_is_read_at_both_details(analyst: Analyst) -> None:
    img = shapes_image()
    assert analyst.look(img, detail="low").text_lines == ["HELLO 42"]
    assert analyst.look(img, detail="high").text_lines == ["HELLO 42"]


def test_colours_and_shapes(analyst: Analyst) -> None:
    facts = analyst.look(shapes_image(), detail="low")
    assert facts.background == "white"
    assert facts.shapes == {"circle": 2, "rectangle": 1, "triangle": 1}
    names = [name for name, _ in facts.colours]
    assert names[0] == "white" and {"red", "blue", "green"} <= set(names)
    assert abs(sum(share for _, share in facts.colours) - 1) < 0.05
    assert 0.8 < facts.brightness < 1


@pytest.mark.parametrize(
    ("colour", "name"),
    [((220, 20, 20), "red"), ((20, 170, 40), "green"), ((20, 40, 220), "blue"), ((250, 220, 0), "yellow"),
     ((255, 140, 0), "orange"), ((130, 30, 180), "purple"), ((255, 105, 180), "pink"), ((110, 60, 20), "brown"),
     ((0, 0, 0), "black"), ((255, 255, 255), "white"), ((128, 128, 128), "grey"), ((0, 200, 210), "cyan")],
)
def test_named_colours(analyst: Analyst, colour: tuple[int, int, int], name: str) -> None:
    facts = analyst.look(Image.new("RGB", (40, 30), colour), detail="low")
    assert facts.colours == [(name, 1.0)]
    assert facts.text_lines == [] and facts.shapes == {}


@pytest.mark.slow
def test_answers_follow_the_intent(analyst: Analyst) -> None:
    img = shapes_image()
    describe = analyst.answer(ask("Describe this picture:", img))
    assert describe.startswith(f"{IDENTITY} The image is 800x600 (seen at high detail")
    assert "4 shapes: 2 circles, 1 rectangle and 1 triangle" in describe
    assert "Dominant colours: white (" in describe and '"HELLO 42"' in describe
    assert "I count 2 circles." in analyst.answer(ask("How many circles are there?", img))
    assert "I count 1 triangle." in analyst.answer(ask("How many triangles?", img))
    assert "Dominant colours:" in analyst.answer(ask("What colours are used?", img))
    size = analyst.answer(ask("What are its dimensions?", img))
    assert "800x600 pixels image/png" in size and "4 tiles" in size


def test_compare_two_images(analyst: Analyst) -> None:
    red = Image.new("RGB", (100, 80), (220, 20, 20))
    blue = Image.new("RGB", (120, 80), (20, 40, 220))
    answer = analyst.answer(ask("Compare these two images.", red, blue))
    assert "Comparing 2 images" in answer
    assert "Image 1: 100x80, mostly red" in answer and "Image 2: 120x80, mostly blue" in answer
    assert "They differ in size." in answer and "Their main colours differ." in answer


def test_no_image_follow_up_explains_statelessness(analyst: Analyst) -> None:
    messages = [
        {"role": "user", "content": "Describe the picture I sent earlier."},
    ]
    assert analyst.answer(messages) == NO_IMAGE_ANSWER
    assert "stateless" in NO_IMAGE_ANSWER and "send the image again" in NO_IMAGE_ANSWER


def test_follow_up_uses_the_most_recent_images(analyst: Analyst) -> None:
    first = Image.new("RGB", (100, 80), (220, 20, 20))
    second = Image.new("RGB", (90, 60), (20, 40, 220))
    messages = ask("Describe", first) + [{"role": "assistant", "content": "A red image."}]
    messages += ask("And this one?", second)[1:] + [{"role": "assistant", "content": "A blue one."}]
    messages.append({"role": "user", "content": "What size is it?"})
    answer = analyst.answer(messages)
    assert "90x60" in answer and "100x80" not in answer


@pytest.mark.slow
def test_deterministic(analyst: Analyst) -> None:
    messages = ask("Describe this picture:", shapes_image())
    assert analyst.answer(messages) == analyst.answer(messages) == Analyst().answer(messages)


@pytest.mark.slow
def test_auto_detail_follows_vizlab_tokens(analyst: Analyst) -> None:
    from vizlab.tokens import resolve_detail

    img = small_text_image()
    facts = analyst.look(img, detail="auto")
    assert facts.detail_used == resolve_detail(2000, 1500, "auto")


def test_transparent_and_odd_modes_are_handled(analyst: Analyst) -> None:
    rgba = Image.new("RGBA", (60, 40), (0, 0, 0, 0))
    facts = analyst.look(_deps.open_checked(_png(rgba), max_bytes=10**6)[0], detail="low")
    assert facts.colours == [("white", 1.0)]  # transparency shows as white
    assert isinstance(analyst.look(Image.new("L", (30, 30), 10), detail="high"), ImageFacts)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# Issue 23: route by what the question asks; colours before reading; answer-format words
# ("One word.", "in a sentence") are how to answer, not what about.
INTENT_TABLE = [
    ("Describe this picture:", "describe"),
    ("", "describe"),
    ("What is in this image?", "describe"),
    ("Describe it in a few words.", "describe"),
    ("Summarise this image in three sentences.", "describe"),
    ("What do you see? Answer in one sentence.", "describe"),
    ("What does the sign say?", "read"),
    ("Transcribe the text", "read"),
    ("What is written on the board?", "read"),
    ("Read the label, please.", "read"),
    ("What's the title of this slide?", "read"),
    ("What does the caption say? Reply with a single line.", "read"),
    ("Which letters are on the plate?", "read"),
    ("What word is printed in large type?", "read"),
    ("Spell out the headline.", "read"),
    ("What colours do you see?", "colours"),
    ("What is the dominant colour? One word.", "colours"),
    ("What is the dominant color? Answer with one word.", "colours"),
    ("Answer in one word: what colour is the sign?", "colours"),
    ("What colour is the text written in?", "colours"),
    ("Which hues dominate the label?", "colours"),
    ("Name the main colour in a single word.", "colours"),
    ("Is the title coloured red or blue?", "colours"),
    ("How many circles are there?", "count"),
    ("How many triangles? Answer with one number.", "count"),
    ("Count the shapes.", "count"),
    ("What is the number of squares? One word.", "count"),
    ("How many words are on the sign?", "count_text"),
    ("Count the lines of text.", "count_text"),
    ("What is the resolution?", "size"),
    ("How big is this image? One line.", "size"),
    ("What are its width and height in pixels?", "size"),
    ("What is the difference between these?", "compare"),
    ("Compare the two images in one sentence.", "compare"),
    ("Are both signs the same colour?", "compare"),
]


@pytest.mark.parametrize(("question", "intent"), INTENT_TABLE)
def test_detect_intent(question: str, intent: str) -> None:
    assert detect_intent(question) == intent


def test_intent_table_covers_every_intent() -> None:
    assert len(INTENT_TABLE) >= 30
    assert {intent for _, intent in INTENT_TABLE} == {"describe", "read", "colours", "count", "count_text", "size", "compare"}


@pytest.mark.slow
def test_a_one_word_colour_question_gets_a_colour_without_ocr(monkeypatch: pytest.MonkeyPatch) -> None:
    from vizlab.local.analyst import answer as module

    reads: list[int] = []
    original = module.read_text_scored
    monkeypatch.setattr(module, "read_text_scored", lambda *a: (reads.append(1), original(*a))[1])
    red = Image.new("RGB", (96, 96), (220, 30, 30))
    reply = Analyst().answer(ask("What is the dominant colour? One word.", red))
    assert "Dominant colours: red (100%)" in reply and "read no text" not in reply
    assert reads == []  # the question needs no text, so OCR never ran
    said = Analyst().answer(ask("How many words does it say?", shapes_image()))
    assert "I read 2 words in 1 line." in said and reads == [1]


def test_truncate_to_tokens_counts_exactly() -> None:
    from vizlab.tokens import count_text_tokens

    text = "I am vizlab's built-in local analyst, not the deployment's model. Text I can read: \"café ünïcødé 42\"."
    for limit in range(1, count_text_tokens(text, "gpt-4o") + 2):
        cut = _deps.truncate_to_tokens(text, limit, "gpt-4o")
        assert text.startswith(cut)
        assert count_text_tokens(cut, "gpt-4o") <= limit


# --- issue 14: OCR only when needed, split recognition reads what one engine reads ------------


def _lines_card(n: int, seed: int = 3) -> Image.Image:
    import random

    from vizlab.datasets import text_card

    rng = random.Random(seed)
    letters = "ACDEFHJKMNPRTUVWXY"
    lines = [" ".join("".join(rng.choice(letters) for _ in range(5)) for _ in range(3)) for _ in range(n)]
    return text_card("\n".join(lines), font_px=22, size=(768, 26 + 40 * n), origin=(20, 12), line_spacing=1.8)


@pytest.mark.slow
def test_split_recognition_reads_exactly_what_one_engine_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from vizlab.local.analyst import ocr as module

    view = _lines_card(16)  # 16 lines: cut into two bands, one per engine (detection and recognition)
    monkeypatch.setenv("VIZLAB_OCR_SESSIONS", "2")
    pool = module.OcrPool()  # two engines, planned with the variable above
    used = module.RECOGNISED  # the sizes of the recognition batches (a diagnostic log)
    assert module.band_cut(np.asarray(view)) is not None
    used.clear()
    lines = module._ocr(view, spaced=False, pool=pool)  # the recogniser's own text
    assert len(used) == 2 and min(used) >= 4  # both engines read a fair share of the lines
    used.clear()
    alone = module._ocr(view, split=False, spaced=False, pool=pool)  # one engine reads the same lines, in the same order
    assert list(used) == [16] and [t for _, _, t in alone] == [t for _, _, t in lines]
    assert all(abs(a[0] - b[0]) <= 8 for a, b in zip(alone, lines))  # boxes placed within a few px
    short = _lines_card(5)  # too short to cut: one engine detects, both recognise (cut by width)
    assert module.band_cut(np.asarray(short)) is None
    used.clear()
    split = module._ocr(short, spaced=False, pool=pool)
    assert [t for _, _, t in split] == [t for _, _, t in module._ocr(short, split=False, spaced=False, pool=pool)]
    assert len(used) == 3 and used[-1] == 5
    rng = random.Random(3)  # _lines_card's lines, drawn again
    letters = "ACDEFHJKMNPRTUVWXY"
    drawn = [" ".join("".join(rng.choice(letters) for _ in range(5)) for _ in range(3)) for _ in range(16)]
    read = [text.replace(" ", "") for _, _, text in sorted(lines)]
    assert sum(a == b.replace(" ", "") for a, b in zip(read, drawn)) >= 15


@pytest.mark.slow
def test_ocr_runs_only_when_the_question_needs_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from vizlab.local.analyst import answer as module

    reads: list[int] = []
    original = module.read_text_scored
    monkeypatch.setattr(module, "read_text_scored", lambda *a: (reads.append(1), original(*a))[1])
    card = _lines_card(2, seed=9)
    url = "data:image/png;base64," + base64.b64encode(_png(card)).decode()
    fresh = Analyst()

    def ask(question: str) -> str:
        msg = {"role": "user", "content": [{"type": "text", "text": question},
                                           {"type": "image_url", "image_url": {"url": url, "detail": "high"}}]}
        return fresh.answer([msg])

    assert "Dominant colours" in ask("What colours are in this image?")
    assert "768x106" in ask("How big is this image?")
    assert reads == []  # no OCR for colours or size
    said = ask("What does the text say?")
    assert reads == [1] and "Text I can read" in said
    ask("Describe this image.")
    ask("Read it again please: what is written?")
    assert reads == [1]  # read once, then cached per image and detail


@pytest.mark.slow
def test_words_come_back_as_separate_words_in_order(analyst: Analyst) -> None:
    """Issue 23: small dense text lost its spaces ("VYVVXJHXWHEV..."); the gaps in each line's
    pixels put them back, and boxes of one row are joined left to right."""
    import difflib
    import random

    from vizlab.datasets import text_card

    rng = random.Random(23)
    letters = "ACDEFHJKMNPRTUVWXY"
    lines = [" ".join("".join(rng.choice(letters) for _ in range(5)) for _ in range(7)) for _ in range(6)]
    card = text_card("\n".join(lines), font_px=15, size=(768, 200), origin=(16, 12), line_spacing=1.9)
    read = analyst.look(card, detail="high").text_lines
    drawn, got = " ".join(lines).split(), " ".join(read).split()
    matcher = difflib.SequenceMatcher(None, drawn, got, autojunk=False)
    aligned = sum(block.size for block in matcher.get_matching_blocks())
    assert aligned >= 0.9 * len(drawn), (aligned, read)
    assert len(read) == len(lines)


def test_respacing_helpers() -> None:
    import numpy as np

    from vizlab.local.analyst import ocr as module

    assert module.word_gap_threshold([0.1, 0.1, 0.12, 0.11]) is None  # one kind of gap: no split
    assert module.word_gap_threshold([0.1, 0.3] * 5) is None  # too few gaps to learn from
    assert module.word_gap_threshold([0.1, 0.12, 0.3] * 10) == pytest.approx(0.21)
    crop = np.full((20, 40, 3), 255, np.uint8)
    crop[0:2, :] = 0  # a neighbouring line's descenders along the top edge do not fill the gap
    crop[6:16, 2:10] = 0
    crop[6:16, 20:30] = 0
    assert module.ink_gaps(crop) == [(10, 20)]
    assert module.ink_gaps(np.full((20, 40, 3), 255, np.uint8)) == []
    assert module._insert_spaces("AB CD", [1, 2, 3, 4, 5], [2.5, 3.5]) == "AB CD"  # no double space


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_ocr_plan_fits_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    from vizlab.local.analyst import ocr as module

    monkeypatch.delenv("VIZLAB_OCR_SESSIONS", raising=False)
    assert module.ocr_plan(cores=2, memory=8 << 30) == (2, 1)  # two engines, one core each
    assert module.ocr_plan(cores=2, memory=600 << 20) == (1, 2)  # not enough memory for two: one engine on both cores
    assert module.ocr_plan(cores=2, memory=None) == (2, 1)  # memory unknown: as if enough
    assert module.ocr_plan(cores=1, memory=8 << 30) == (1, 1)
    assert module.ocr_plan(cores=8, memory=8 << 30) == (2, 4)
    assert module.ocr_plan()[0] in (1, 2)  # this machine, measured
    assert module.ocr_plan(cores=2, memory=module.Memory.MEASURE) == module.ocr_plan(cores=2)
    with pytest.raises(TypeError, match=r"ocr_plan\(memory='measure'\).*Memory.MEASURE"):
        module.ocr_plan(cores=2, memory="measure")  # type: ignore[arg-type]  # the old string sentinel
    monkeypatch.setenv("VIZLAB_OCR_SESSIONS", "1")
    assert module.ocr_plan(cores=8, memory=8 << 30) == (1, 8)
