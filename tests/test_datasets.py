"""vizlab.datasets: deterministic cards, labels true by construction, and the score function."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFont

from vizlab import datasets
from vizlab.datasets import (
    COLOURS,
    LabelledImage,
    colour_card,
    detail_benchmark,
    font,
    place_shapes,
    random_code,
    sample_photo,
    sample_path,
    sample_photo_names,
    shapes_card,
    text_card,
)

BLANK = Image.new("RGB", (8, 8))


def _item(task: str, answer: str, **meta: object) -> LabelledImage:
    return LabelledImage("x", BLANK, task, "?", answer, dict(meta))


def _count_components(img: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> int:
    """Count solid regions by flood-filling each with the background until none is left."""
    work = img.copy()
    count = 0
    while True:
        mask = np.any(np.asarray(work) != np.array(background, dtype=np.uint8), axis=2)
        if not mask.any():
            return count
        y, x = np.unravel_index(int(np.argmax(mask)), mask.shape)
        ImageDraw.floodfill(work, (int(x), int(y)), background, thresh=0)
        count += 1


# --- fonts and text ---------------------------------------------------------------------------


def test_font_is_dejavu_sans_from_matplotlib() -> None:
    face = font(12)
    assert isinstance(face, ImageFont.FreeTypeFont)
    assert face.size == 12
    assert os.path.basename(str(face.path)) == "DejaVuSans.ttf"
    assert "matplotlib" in str(face.path)
    assert face.getname() == ("DejaVu Sans", "Book")


def test_font_rejects_non_positive_size() -> None:
    with pytest.raises(ValueError, match="positive"):
        font(0)


def test_text_card_draws_text_of_the_given_size() -> None:
    small = text_card("K7RF 49XM", font_px=12)
    big = text_card("K7RF 49XM", font_px=48)
    assert small.size == big.size == (1600, 1200) and small.mode == "RGB"

    def ink_height(img: Image.Image) -> int:
        rows = np.where(np.any(np.asarray(img) < 128, axis=(1, 2)))[0]
        return int(rows.max() - rows.min() + 1)

    # Capitals and digits only: ink height is the cap height, about 0.73 em.
    assert 7 <= ink_height(small) <= 11
    assert 32 <= ink_height(big) <= 38


def test_text_card_multiline_and_out_of_bounds() -> None:
    img = text_card("AAAA\nBBBB", font_px=20, size=(200, 120), origin=(10, 10))
    rows = np.where(np.any(np.asarray(img) < 128, axis=(1, 2)))[0]
    assert rows.max() > 45  # the second line is 40 px below the first
    with pytest.raises(ValueError, match="outside the 100x40 card"):
        text_card("A VERY LONG LINE OF TEXT", font_px=20, size=(100, 40))


def test_random_code_has_letters_and_digits_without_look_alikes() -> None:
    import random

    rng = random.Random(0)
    for _ in range(200):
        code = random_code(rng)
        assert len(code) == 4
        assert re.search(r"[A-Z]", code) and re.search(r"[0-9]", code)
        assert not set(code) & set("B8DOQ0GIL1S5Z2")


# --- shapes and colours -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "counts",
    [{"circle": 3}, {"rectangle": 2, "triangle": 4}, {"circle": 1, "rectangle": 1, "triangle": 1}, {"circle": 0}],
)
@pytest.mark.parametrize("seed", [0, 7])
def test_shapes_card_count_is_the_label(counts: dict[str, int], seed: int) -> None:
    size = (400, 300)
    placed = place_shapes(counts, size=size, seed=seed)
    assert sorted(s["kind"] for s in placed) == sorted(k for k, n in counts.items() for _ in range(n))
    for i, a in enumerate(placed):
        l, t, r, b = a["box"]
        assert 0 <= l < r <= size[0] and 0 <= t < b <= size[1]
        for other in placed[i + 1 :]:
            ol, ot, or_, ob = other["box"]
            assert r <= ol or or_ <= l or b <= ot or ob <= t, "shapes overlap"
    # In pixels too: each shape is one separate solid region.
    assert _count_components(shapes_card(counts, size=size, seed=seed)) == sum(counts.values())


def test_shapes_card_errors() -> None:
    with pytest.raises(ValueError, match="unknown shape kind"):
        shapes_card({"hexagon": 1})
    with pytest.raises(ValueError, match="could not fit"):
        shapes_card({"circle": 200}, size=(100, 100))


@pytest.mark.parametrize("name", ["red", "blue", "green", "yellow"])
def test_colour_card_is_dominated_by_its_colour(name: str) -> None:
    img = colour_card(name, seed=3)
    pixels = np.asarray(img).reshape(-1, 3)
    share = np.all(pixels == np.array(COLOURS[name], dtype=np.uint8), axis=1).mean()
    assert 0.85 < share < 1.0  # dominant, with distractors present


def test_colour_card_rejects_unknown_colour() -> None:
    with pytest.raises(ValueError, match="unknown colour 'teal'.*red"):
        colour_card("teal")


# --- photos -----------------------------------------------------------------------------------


def test_sample_photo_offline() -> None:
    assert "grace_hopper.jpg" in sample_photo_names()
    photo = sample_photo()
    assert photo.size == (512, 600) and photo.mode == "RGB"
    # Transparent PNGs come back flattened to RGB.
    assert sample_photo("logo2.png").mode == "RGB"


def test_sample_photo_unknown_name_lists_available() -> None:
    with pytest.raises(FileNotFoundError, match=r"no sample image 'cat.jpg'.*grace_hopper\.jpg"):
        sample_photo("cat.jpg")


def test_sample_path_finds_matplotlib_files_without_importing_it() -> None:
    code = (
        "import sys, vizlab.datasets as d; p = d.sample_path('grace_hopper.jpg'); d.text_card('hi', font_px=20); "
        "d.colour_card('red'); print(p.name, p.stat().st_size > 0, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["grace_hopper.jpg", "True", "False"]
    assert sample_path("logo2.png").parent.name == "sample_data"


def test_sample_path_unknown_name_says_where_it_looked() -> None:
    with pytest.raises(FileNotFoundError) as info:
        sample_path("cat.jpg")
    message = str(info.value)
    assert "'cat.jpg'" in message and os.path.join("mpl-data", "sample_data") in message
    assert "grace_hopper.jpg" in message and "pip install" in message
    with pytest.raises(FileNotFoundError, match="no sample file '../matplotlibrc'"):
        sample_path("../matplotlibrc")


def test_sample_path_without_matplotlib_names_the_remedy(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets._mpl_data_dir.cache_clear()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what find_spec reports when it is absent
    try:
        with pytest.raises(ModuleNotFoundError, match=r"matplotlib is not installed.*pip install matplotlib"):
            sample_path("grace_hopper.jpg")
    finally:
        datasets._mpl_data_dir.cache_clear()


# --- the benchmark ----------------------------------------------------------------------------


@pytest.mark.slow
def test_benchmark_is_deterministic() -> None:
    a, b = detail_benchmark(seed=0), detail_benchmark(seed=0)
    assert [x.id for x in a] == [x.id for x in b]
    for x, y in zip(a, b):
        assert x.image.tobytes() == y.image.tobytes()
        assert (x.task, x.question, x.answer, x.meta) == (y.task, y.question, y.answer, y.meta)
    other = detail_benchmark(seed=1)
    assert [x.answer for x in a if x.task == "read_text"] != [x.answer for x in other if x.task == "read_text"]


@pytest.mark.slow
def test_benchmark_contents() -> None:
    bench = detail_benchmark()
    by_task: dict[str, list[LabelledImage]] = {}
    for item in bench:
        by_task.setdefault(item.task, []).append(item)
    assert sorted(by_task) == ["count_shapes", "describe", "dominant_colour", "read_text"]
    assert [x.meta["font_px"] for x in by_task["read_text"]] == [8, 12, 16, 24, 48]
    assert len({x.id for x in bench}) == len(bench)
    for item in by_task["read_text"]:
        assert item.image.size == (1600, 1200)
        assert len(item.answer.split()) == 6
        assert item.score(item.answer) == 1.0
    for item in by_task["count_shapes"]:
        assert item.answer == str(item.meta["counts"][item.meta["kind"]])
        assert _count_components(item.image) == sum(item.meta["counts"].values())
    for item in by_task["dominant_colour"]:
        assert item.image.getpixel((item.image.width // 2, item.image.height - 2)) == COLOURS[item.answer]
    (photo,) = by_task["describe"]
    assert photo.score("a woman in uniform") is None
    assert detail_benchmark(include_photos=False, font_sizes=(10,), cards_per_size=2)[1].id == "text-10px-1"


def test_labelled_image_rejects_unknown_task() -> None:
    with pytest.raises(ValueError, match="task 'guess'"):
        LabelledImage("x", BLANK, "guess", "?", "a")


# --- scoring ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "reply", "expected"),
    [
        ("K7RF 49XM", "K7RF 49XM", 1.0),
        ("K7RF 49XM", 'Text I can read: "k7rf-49xm".', 1.0),
        ("K7RF 49XM", "K7RF49XM", 1.0),
        ("K7RF 49XM", "K7RF / 4 9 X M", 1.0),
        ("K7RF 49XM", "K7RF and something else", 0.5),
        ("K7RF 49XM 3CAE", "49XM", pytest.approx(1 / 3)),
        ("K7RF 49XM", "I can read no text.", 0.0),
        ("K7RF 49XM", "", 0.0),
    ],
)
def test_score_read_text(answer: str, reply: str, expected: float) -> None:
    assert _item("read_text", answer).score(reply) == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("3", 1.0),
        ("I count 3 circles.", 1.0),
        ("There are three red circles and 2 squares.", 1.0),
        ("The image is 1024x768 and has 3 circles.", 1.0),  # the number next to the kind wins
        ("I count 2 rectangles and 3 circles.", 1.0),
        ("4 circles", 0.0),
        ("I see some circles.", 0.0),
        (None, 0.0),
    ],
)
def test_score_count_shapes(reply: str | None, expected: float) -> None:
    assert _item("count_shapes", "3", kind="circle").score(reply) == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("red", 1.0),
        ("Dominant colours: red (96%), blue (2%).", 1.0),
        ("RED", 1.0),
        ("Mostly blue with a little red.", 0.0),
        ("reddish", 0.0),  # whole words only
        ("", 0.0),
    ],
)
def test_score_dominant_colour(reply: str, expected: float) -> None:
    assert _item("dominant_colour", "red").score(reply) == expected


def test_score_colour_synonyms() -> None:
    assert _item("dominant_colour", "grey").score("It is gray.") == 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="ACEFHJKMNPRTUVWXY34679", min_size=2, max_size=6), min_size=1, max_size=6), st.text())
def test_score_text_properties(tokens: list[str], noise: str) -> None:
    item = _item("read_text", " ".join(tokens))
    assert item.score(" ".join(tokens)) == 1.0
    # Whole tokens only (issue 22): words around the answer cost nothing, other numbers would.
    noise = "".join(c for c in noise if not c.isdigit())
    assert item.score(noise + " " + " ".join(tokens).lower() + " " + noise) == 1.0
    value = item.score(noise)
    assert value is not None and 0.0 <= value <= 1.0


def test_module_exports_exist() -> None:
    for name in datasets.__all__:
        assert hasattr(datasets, name), name


@pytest.mark.slow
def test_builtin_set_has_200_items_in_eight_categories_deterministically() -> None:
    from vizlab.datasets import BUILTIN_CATEGORIES, builtin_set

    items = builtin_set()
    assert len(items) >= 200
    counts = {c: sum(1 for i in items if i.meta["category"] == c) for c in BUILTIN_CATEGORIES}
    assert all(n == 25 for n in counts.values()), counts
    assert len({i.id for i in items}) == len(items)
    again = builtin_set(per_category=3, categories=("signs", "tables"))
    first = [i for i in items if i.meta["category"] in ("signs", "tables")]
    assert [x.answer for x in again] == [x.answer for x in first if int(x.id.rsplit("-", 1)[1]) < 3]
    sizes = {i.meta.get("font_px") for i in items if i.task == "read_text"}
    assert min(s for s in sizes if s) <= 10 and max(s for s in sizes if s) >= 64
