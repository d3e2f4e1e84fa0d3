"""What an experiment runs on: validated items from a folder, a labels file, a DataFrame or a list.

A labels file is CSV or JSONL (``image``, ``question``, ``expected``, optional ``category``,
``scorer``, ``id``, ``page``: a PDF's page with ``unit="page"``); without labels every image gets the run's prompt. Every row is checked
before anything is sent; each problem is a :class:`Problem` and nothing is dropped silently.
Trade-off: validation reads each image header once more than needed, which costs less than a
bad file found mid-run. Details: docs/internals.md#experiments
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizlab.experiments.scorers import Scorer, UnknownScorerError, get_scorer

if TYPE_CHECKING:
    pass

__all__ = ["Item", "ItemSet", "Problem", "load_items", "IMAGE_SUFFIXES", "LABEL_COLUMNS"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
LABEL_COLUMNS = ("image", "question", "expected", "category", "scorer", "id", "page")


@dataclass(frozen=True, eq=False)
class Item:
    """One image and one question; ``expected`` None means unlabelled (map, not score)."""

    id: str
    image: Any  # a path (str / Path), a PIL image or bytes
    question: str
    expected: Any = None
    category: str = ""
    scorer: Scorer | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        return self.expected is not None


@dataclass(frozen=True)
class Problem:
    """A row that will not run: where it was, which file, what is wrong and what to do."""

    row: int | None  # 1-based data row of the labels file (None: not from a file)
    image: str | None
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "item"
        return f"{where} ({self.image or 'no image'}): {self.message}"


@dataclass
class ItemSet:
    """Items that passed validation, and the problems of those that did not."""

    items: list[Item]
    problems: list[Problem] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Any:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"ItemSet({len(self.items)} items, {len(self.problems)} problems, source={self.source!r})"

    @property
    def labelled(self) -> bool:
        return any(i.labelled for i in self.items)

    def sha256(self) -> str:
        """Hash of the item set: ids, questions, expected values, scorers and image identities."""
        h = hashlib.sha256()
        for item in self.items:
            h.update(json.dumps([item.id, item.question, _jsonable(item.expected), item.category,
                                 item.scorer.name if item.scorer else None, _image_identity(item.image)],
                                default=str).encode("utf-8"))  # fmt: skip
        return h.hexdigest()


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else str(value)


def _image_identity(image: Any) -> str:
    if isinstance(image, (str, os.PathLike)):
        p = Path(image)
        try:
            st = p.stat()
            return f"{p.name}:{st.st_size}:{int(st.st_mtime)}"
        except OSError:
            return str(p)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return hashlib.sha256(bytes(image)).hexdigest()
    try:
        return hashlib.sha256(image.tobytes()).hexdigest()
    except AttributeError:
        return repr(image)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def _check_image(path: Path) -> str | None:
    """None if ``path`` is a readable image, else what is wrong (and what to do)."""
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        return f"image file not found: {path}; fix the path in the labels file or add the file"
    if not path.is_file():
        return f"{path} is not a regular file; point the row at an image file"
    with path.open("rb") as f:
        if f.read(5) == b"%PDF-":  # a document: checked when its arm is built (vizlab.documents)
            return None
    try:
        with Image.open(path) as img:
            img.verify()
    except Image.DecompressionBombError as e:  # over Pillow's ~179-megapixel guard (a panorama, a scan)
        return (f"{path} is too large to open safely ({str(e)[:90]}); scale it down (e.g. under 50 megapixels) "
                "or split it into parts")  # fmt: skip
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        return f"{path} is not a readable image ({type(e).__name__}: {str(e)[:80]}); re-export it as PNG or JPEG"
    return None


def _read_labels(labels: str | os.PathLike[str]) -> list[dict[str, Any]]:
    path = Path(labels)
    if not path.is_file():
        raise FileNotFoundError(f"labels file not found: {path}; give a CSV or JSONL with columns {', '.join(LABEL_COLUMNS)}")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                row = {"__error__": f"line {n} is not JSON ({e}); fix or delete it"}
            if not isinstance(row, dict):
                row = {"__error__": f"line {n} is not a JSON object; write one object per line"}
            rows.append(row)
        return rows
    import csv

    rows = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, restkey="__extra__")
        header = [h.strip() for h in (reader.fieldnames or [])]
        if "image" not in header:
            raise ValueError(f"labels file {path}: no 'image' column (columns: {header}); the header must name "
                             f"{', '.join(LABEL_COLUMNS[:3])} and optionally {', '.join(LABEL_COLUMNS[3:])}")
        reader.fieldnames = header
        for row in reader:
            if row.get("__extra__") or any(v is None for k, v in row.items() if k != "__extra__"):
                got = len(header) + len(row.get("__extra__") or []) - sum(1 for v in row.values() if v is None)
                rows.append({"__error__": f"line {reader.line_num} has {got} fields, the header has {len(header)}; "
                                          "quote fields that contain commas", "image": row.get("image")})
                continue
            rows.append(row)
    return rows


def _resolve(image: Any, root: Path | None) -> Any:
    if isinstance(image, str):
        p = Path(image)
        return p if p.is_absolute() or root is None else root / p
    return image


def _rows_to_items(rows: Sequence[dict[str, Any]], *, root: Path | None, prompt: str | None, scorer: Any,
                   judges: dict[str, Any] | None, source: str) -> ItemSet:  # fmt: skip
    items: list[Item] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for n, row in enumerate(rows, start=1):
        image_field = row.get("image")
        label = None if _missing(image_field) else str(image_field)
        if "__error__" in row:
            problems.append(Problem(n, label, row["__error__"]))
            continue
        unknown = set(row) - set(LABEL_COLUMNS)
        if _missing(image_field):
            problems.append(Problem(n, None, "no image: the 'image' column is empty; give a file name"))
            continue
        image = _resolve(image_field, root)
        if isinstance(image, Path):
            wrong = _check_image(image)
            if wrong:
                problems.append(Problem(n, label, wrong))
                continue
        question = None if _missing(row.get("question")) else str(row["question"])
        if question is None:
            question = prompt
        if question is None:
            problems.append(Problem(n, label, "no question: fill the 'question' column, or pass prompt= / --prompt"))
            continue
        spec = row.get("scorer")
        expected = None if _missing(row.get("expected")) else row.get("expected")
        chosen: Scorer | None = None
        if expected is not None:
            try:
                chosen = get_scorer(str(spec) if not _missing(spec) else (scorer or "normalised"), judges=judges)
            except UnknownScorerError as e:
                problems.append(Problem(n, label, str(e)))
                continue
        item_id = str(row["id"]) if not _missing(row.get("id")) else (Path(label).stem if label else f"row{n}")
        base, k = item_id, 1
        while item_id in seen:
            k += 1
            item_id = f"{base}-{k}"
        seen.add(item_id)
        category = "" if _missing(row.get("category")) else str(row["category"])
        meta = {"row": n, **({"extra_columns": sorted(unknown)} if unknown else {}),
                **({} if _missing(row.get("page")) else {"page": row["page"]})}  # read by unit="page"
        items.append(Item(item_id, image, question, expected, category, chosen, meta))
    return ItemSet(items, problems, source)


def _from_labelled_images(images: Iterable[Any]) -> ItemSet:
    """The built-in sets (:class:`vizlab.datasets.LabelledImage`): their own scoring rules."""
    from vizlab.experiments.scorers import from_callable

    items = []
    for li in images:
        binary = li.task in ("count_shapes", "dominant_colour") or bool(li.meta.get("binary"))
        rule = from_callable(lambda answer, expected, _li=li: _li.score(answer), name=f"builtin:{li.task}", binary=binary)
        expected = li.answer if li.scored else None
        category = str(li.meta.get("category") or li.task)
        items.append(Item(li.id, li.image, li.question, expected, category, rule if li.scored else None,
                          {k: v for k, v in li.meta.items() if isinstance(v, (str, int, float, bool))}))  # fmt: skip
    return ItemSet(items, [], "built-in set")


def load_items(
    source: Any,
    *,
    labels: str | os.PathLike[str] | None = None,
    prompt: str | None = None,
    scorer: str | Scorer | None = None,
    judges: dict[str, Any] | None = None,
    unit: str = "document",
) -> ItemSet:
    """Validated :class:`Item` rows from any of the accepted inputs.

    * ``source`` a folder and ``labels`` None: every image in it, asked ``prompt`` (unlabelled);
      a ``labels.csv`` / ``labels.jsonl`` inside the folder is used if present.
    * ``labels`` a CSV / JSONL path: its rows, image paths relative to ``source`` (a folder) or to
      the labels file's own folder.
    * ``source`` a CSV / JSONL file: as ``labels`` with images beside it.
    * ``source`` a pandas DataFrame with the label columns.
    * ``source`` a list of :class:`vizlab.datasets.LabelledImage` (the built-in sets), of
      :class:`Item`, or of paths / PIL images (unlabelled, asked ``prompt``).

    ``scorer`` is the default for rows without a ``scorer`` column (default ``normalised``).
    ``unit="page"``: one item per page of each PDF (or the page a row's ``page`` column names),
    as :func:`vizlab.experiments.document_pages.by_page` says; ``"document"``: one per PDF.
    """
    if unit != "document":  # one item per PDF page: vizlab.experiments.document_pages
        from vizlab.experiments.document_pages import by_page

        return by_page(load_items(source, labels=labels, prompt=prompt, scorer=scorer, judges=judges), unit,
                       problem=Problem)  # Problem passed in: document_pages imports nothing from here (no circle)
    import pandas as pd

    if isinstance(source, ItemSet):
        return source
    if isinstance(source, pd.DataFrame):
        rows = [dict(r) for r in source.to_dict(orient="records")]
        return _rows_to_items(rows, root=None, prompt=prompt, scorer=scorer, judges=judges, source="DataFrame")
    if isinstance(source, (str, os.PathLike)):
        return _from_path(Path(source), labels, prompt=prompt, scorer=scorer, judges=judges)
    return _from_list(list(source), prompt=prompt)


def _from_path(path: Path, labels: str | os.PathLike[str] | None, *, prompt: str | None,
               scorer: str | Scorer | None, judges: dict[str, Any] | None) -> ItemSet:  # fmt: skip
    """A folder (with its labels file, if any), or a labels file with images beside it."""
    if labels is None and path.is_file() and path.suffix.lower() in (".csv", ".jsonl", ".ndjson"):
        labels, path = path, path.parent
    if labels is None and path.is_dir():
        labels = next((path / name for name in ("labels.csv", "labels.jsonl") if (path / name).is_file()), None)
    if labels is not None:
        root = path if path.is_dir() else Path(labels).parent
        return _rows_to_items(_read_labels(labels), root=root, prompt=prompt, scorer=scorer, judges=judges,
                              source=str(labels))  # fmt: skip
    if not path.is_dir():
        raise FileNotFoundError(f"images folder not found: {path}; give a folder of images or a labels file")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in (*IMAGE_SUFFIXES, ".pdf"))
    rows = [{"image": p.name} for p in files]
    return _rows_to_items(rows, root=path, prompt=prompt, scorer=scorer, judges=judges, source=str(path))


def _from_list(items: list[Any], *, prompt: str | None) -> ItemSet:
    """Built-in labelled images, Items, or paths / PIL images asked ``prompt`` (unreadable paths are problems)."""
    from vizlab.datasets import LabelledImage

    if items and all(isinstance(x, LabelledImage) for x in items):
        return _from_labelled_images(items)
    if all(isinstance(x, Item) for x in items):
        return ItemSet(items, [], "items")
    out: list[Item] = []
    problems: list[Problem] = []
    for n, image in enumerate(items, start=1):
        if isinstance(image, (str, os.PathLike)):
            wrong = _check_image(Path(image))
            if wrong:
                problems.append(Problem(n, str(image), wrong))
                continue
        if prompt is None:
            raise ValueError("load_items: a list of images needs prompt= (the question to ask of each)")
        item_id = Path(image).stem if isinstance(image, (str, os.PathLike)) else f"image{n - 1}"
        out.append(Item(item_id, image, prompt))
    return ItemSet(out, problems, "list")
