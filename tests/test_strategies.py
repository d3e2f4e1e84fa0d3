"""Image strategies: what each one sends, and that its token bill is estimated on what it sends."""

from __future__ import annotations

import pytest
from PIL import Image

from vizlab.datasets import text_card
from vizlab.experiments.regions import merge_regions, text_boxes, text_regions
from vizlab.experiments.strategies import check_strategy, grid_shape, strategy_images
from vizlab.images import open_image


def _two_labels() -> Image.Image:
    """A 1600x1200 page, mostly empty, with two short lines of text far apart."""
    page = Image.new("RGB", (1600, 1200), "white")
    page.paste(text_card("INVOICE 4711", font_px=40, size=(420, 90), origin=(10, 20)), (80, 60))
    page.paste(text_card("TOTAL 93.50", font_px=40, size=(420, 90), origin=(10, 20)), (1100, 1000))
    return page


def test_check_strategy_accepts_the_documented_forms_and_names_the_limit() -> None:
    for s in ("whole", "fit", "fit:1024x768", "crops:4", "text-crops:3"):
        assert check_strategy(s) == s
    with pytest.raises(ValueError, match="text-crops:10 or fewer"):
        check_strategy("text-crops:12", max_images=10)
    with pytest.raises(ValueError, match="text-crops:N"):
        check_strategy("ocr")
    assert grid_shape(6) == (2, 3)


def test_grid_crops_cover_the_image_exactly() -> None:
    image = Image.new("RGB", (601, 401), "white")
    crops = strategy_images(image, "crops:6", "low", name="x")
    sizes = [open_image(c.data_url).size for c in crops]
    assert len(crops) == 6 and sum(w for w, _ in sizes[:3]) == 601 and sum(h for _, h in sizes[::3]) == 401


@pytest.mark.slow
def test_the_detector_finds_both_lines_and_text_crops_hold_them_and_little_else() -> None:
    page = _two_labels()
    boxes = text_boxes(page)
    assert len(boxes) >= 2
    regions = text_regions(page, 4)
    assert len(regions) == 2  # two separate lines, far apart: two regions
    top, bottom = regions
    assert top[0] < 200 and top[1] < 200 and bottom[0] > 1000 and bottom[1] > 900
    area = sum((r[2] - r[0]) * (r[3] - r[1]) for r in regions)
    assert area < 0.1 * 1600 * 1200  # the empty page is not sent
    crops = strategy_images(page, "text-crops:4", "low", name="page")
    assert [open_image(c.data_url).size for c in crops] == [(r[2] - r[0], r[3] - r[1]) for r in regions]
    one = text_regions(page, 1)  # a budget of one crop: the union of both
    assert len(one) == 1 and one[0][0] <= top[0] and one[0][2] >= bottom[2]


def test_no_text_found_sends_the_whole_image() -> None:
    blank = Image.linear_gradient("L").resize((300, 200)).convert("RGB")  # a smooth sky, no edges
    crops = strategy_images(blank, "text-crops:3", "low", name="blank")
    assert len(crops) == 1 and open_image(crops[0].data_url).size == (300, 200)


def test_merge_regions_keeps_the_tightest_unions_and_clips_to_the_image() -> None:
    boxes = [(0, 0, 10, 10), (30, 0, 40, 10), (500, 500, 510, 510)]
    assert merge_regions(boxes, 2, (512, 512)) == [(0, 0, 48, 18), (492, 492, 512, 512)]
    with pytest.raises(ValueError, match="at least one"):
        merge_regions(boxes, 0, (512, 512))
