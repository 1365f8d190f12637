"""Fuzzing the readers (hypothesis): mutated PNG/JPEG/GIF/BMP/TIFF/WebP bytes, masks of
random modes and sizes, malformed classes.yaml, COCO JSON and split lists, and `data
check` over a dataset holding a mutated file. Only SemsegError (DataProblem included) may
escape; nothing hangs (a deadline per example); nothing outside the test's own temporary
folder is written.

The default run tries a few hundred examples in all; `pytest -m slow tests/test_fuzz.py`
runs 10,000 per target.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from semseg.classes import ClassSet
from semseg.config import load_config
from semseg.data import read_split
from semseg.data.check import check_dataset
from semseg.data.io import read_image, read_mask
from semseg.data.labels import LabelDecoder
from semseg.data.listing import read_name_list
from semseg.errors import SemsegError

QUICK_EXAMPLES = 60  # per target: a few hundred in all, well under a minute
LONG_EXAMPLES = 10_000
DEADLINE_MS = 5_000
FUZZ_PIXELS = 1 << 16  # data.max_pixels for fuzzing: mutated headers may declare anything


def _encoded(mode: str, size: tuple[int, int], fmt: str) -> bytes:
    values = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(values).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


SEEDS = {
    ".png": [_encoded(mode, (13, 9), "PNG") for mode in ("RGB", "L", "P", "RGBA", "LA")],
    ".jpg": [_encoded("RGB", (16, 12), "JPEG"), _encoded("L", (8, 8), "JPEG")],
    ".gif": [_encoded("P", (9, 7), "GIF")],
    ".bmp": [_encoded("RGB", (7, 5), "BMP")],
    ".tif": [_encoded("RGB", (6, 6), "TIFF")],
    ".webp": [_encoded("RGB", (10, 6), "WEBP")],
}


@st.composite
def mutated_files(draw) -> tuple[str, bytes]:
    """A valid encoded image with a few edits: byte changes (mostly in the header),
    insertions, deletions, truncation."""
    extension = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(draw(st.sampled_from(SEEDS[extension])))
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        where = draw(
            st.one_of(st.integers(0, min(64, len(data) - 1)), st.integers(0, len(data) - 1))
        )
        edit = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        if edit == "set":
            data[where] = draw(st.integers(0, 255))
        elif edit == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=12))
        elif edit == "delete":
            del data[where : where + draw(st.integers(1, 12))]
        else:
            del data[where:]
    return extension, bytes(data)


MASK_MODES = ["1", "L", "P", "I;16", "I", "F", "RGB", "RGBA", "LA", "CMYK"]


@st.composite
def mask_files(draw) -> tuple[str, bytes]:
    """A mask file of a random mode and size (PNG, TIFF or BMP) with random values."""
    mode = draw(st.sampled_from(MASK_MODES))
    width, height = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    fmt, extension = draw(st.sampled_from([("PNG", ".png"), ("TIFF", ".tif"), ("BMP", ".bmp")]))
    seed = draw(st.integers(0, 2**16))
    values = np.random.default_rng(seed).integers(0, 8, (height, width), dtype=np.uint8)
    image = Image.fromarray(values, mode="L").convert(mode)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):
        assume(False)  # this format cannot store this mode: not a file a user can have
    return extension, buffer.getvalue()


def _only_semseg_errors(call: Callable[[], object]) -> None:
    """Run `call`; a SemsegError is an answer, any other exception fails the test."""
    with contextlib.suppress(SemsegError):
        call()


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def fuzz_image_bytes(case: tuple[str, bytes], folder: Path) -> None:
    path = _write(folder, f"sample{case[0]}", case[1])
    _only_semseg_errors(lambda: read_image(path, max_pixels=FUZZ_PIXELS))
    _only_semseg_errors(lambda: read_mask(path, max_pixels=FUZZ_PIXELS))


CLASSES = ClassSet(("a", "b", "c"), ignore_index=255)


def fuzz_mask_modes(case: tuple[str, bytes], folder: Path) -> None:
    path = _write(folder, f"mask{case[0]}", case[1])
    for decoder in (
        LabelDecoder(CLASSES),
        LabelDecoder(CLASSES, {7: 255}),
        LabelDecoder(CLASSES, rgb=True),
    ):

        def decode(decoder: LabelDecoder = decoder) -> None:
            labels = decoder.decode(*read_mask(path), path)
            assert labels.dtype == np.uint8 and labels.ndim == 2

        _only_semseg_errors(decode)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-300, 300) | st.floats() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
classes_documents = st.one_of(
    st.text(max_size=80),
    st.binary(max_size=40),
    yaml_values.map(lambda value: yaml.safe_dump(value)),
    st.fixed_dictionaries(
        {"names": yaml_values},
        optional={"palette": yaml_values, "ignore_index": yaml_values, "colours": yaml_values},
    ).map(lambda value: yaml.safe_dump(value)),
)


def fuzz_classes_yaml(document: str | bytes, folder: Path) -> None:
    path = folder / "classes.yaml"
    path.write_bytes(document if isinstance(document, bytes) else document.encode())
    _only_semseg_errors(lambda: ClassSet.from_yaml(path))


split_lists = st.one_of(st.binary(max_size=60), st.text(max_size=60))


def fuzz_split_list(text: str | bytes, folder: Path) -> None:
    path = folder / "train.txt"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    _only_semseg_errors(lambda: read_name_list(path))


def _coco_document() -> dict:
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 6, "width": 8}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 3,
                "segmentation": [[1, 1, 6, 1, 6, 5, 1, 5]],
                "area": 20,
                "bbox": [1, 1, 5, 4],
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 3, "name": "car"}],
    }


coco_documents = st.one_of(
    st.binary(max_size=80),
    st.just(_coco_document()).flatmap(
        lambda base: st.tuples(
            st.sampled_from(["images", "annotations", "categories"]),
            st.integers(0, 2),
            yaml_values,
        ).map(lambda edit: _edited_coco(base, *edit))
    ),
)


def _edited_coco(base: dict, section: str, field_index: int, value: object) -> bytes:
    """The document with one field of a section replaced (or the section itself)."""
    document = json.loads(json.dumps(base))
    entries = document[section]
    if field_index == 2:
        document[section] = value
    else:
        key = sorted(entries[0])[field_index % len(entries[0])]
        entries[0][key] = value
    return json.dumps(document).encode()


def fuzz_coco(document: bytes, folder: Path) -> None:
    pytest.importorskip("pycocotools")
    (folder / "annotations").mkdir(exist_ok=True)
    (folder / "val2017").mkdir(exist_ok=True)
    Image.new("RGB", (8, 6)).save(folder / "val2017" / "a.jpg")
    (folder / "annotations" / "instances_val2017.json").write_bytes(document)
    data = load_config(None, ["data.format=coco", f"data.root={folder}"]).data

    def read_all() -> None:
        dataset = read_split(data, "val2017", strict=False)
        for index in range(len(dataset)):
            _only_semseg_errors(lambda index=index: dataset.load(index))

    _only_semseg_errors(read_all)


def fuzz_data_check(case: tuple[str, bytes], folder: Path) -> None:
    root = folder / "dataset"
    if not root.exists():
        for sub in ("images", "masks"):
            (root / sub).mkdir(parents=True)
        for name in ("a", "b"):
            Image.new("RGB", (8, 6)).save(root / "images" / f"{name}.png")
            Image.fromarray(np.zeros((6, 8), np.uint8)).save(root / "masks" / f"{name}.png")
        (root / "classes.yaml").write_text("names: [bg, fg]\n")
    extension, data = case
    for old in (root / "masks").glob("c.*"):
        old.unlink()
    (root / "images" / "c.png").write_bytes(data if extension == ".png" else b"")
    (root / "masks" / "c.png").write_bytes(data)
    config = load_config(
        None,
        ["data.format=folder", f"data.root={root}", "data.num_workers=0", "data.val_ratio=0.5"],
    ).data.model_copy(update={"max_pixels": FUZZ_PIXELS})
    _only_semseg_errors(lambda: check_dataset(config))


TARGETS = {
    "image bytes": (fuzz_image_bytes, mutated_files()),
    "mask modes": (fuzz_mask_modes, mask_files()),
    "classes.yaml": (fuzz_classes_yaml, classes_documents),
    "split list": (fuzz_split_list, split_lists),
    "coco json": (fuzz_coco, coco_documents),
    "data check": (fuzz_data_check, mutated_files()),
}


def _fuzz(name: str, examples: int, monkeypatch: pytest.MonkeyPatch) -> None:
    target, strategy = TARGETS[name]
    with tempfile.TemporaryDirectory() as folder:
        monkeypatch.setenv("SEMSEG_CACHE", str(Path(folder) / "cache"))
        work = Path(folder) / "work"
        work.mkdir()
        before = set(os.listdir(Path.cwd()))

        @settings(
            max_examples=examples,
            deadline=DEADLINE_MS,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(strategy)
        def run(case) -> None:
            calls.append(1)
            target(case, work)

        calls: list[int] = []
        run()
        assert set(os.listdir(Path.cwd())) == before  # nothing written outside tmp
        print(f"fuzzed {name}: {len(calls)} examples")  # shown with -s (the note's counts)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_readers_raise_only_semseg_errors(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _fuzz(name, QUICK_EXAMPLES, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_readers_raise_only_semseg_errors_long(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _fuzz(name, LONG_EXAMPLES, monkeypatch)
