"""Helpers format readers share for finding files; missing files become DataProblems."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from semseg.config import DataConfig
from semseg.data.base import Sample
from semseg.data.io import IMAGE_EXTENSIONS, MASK_EXTENSIONS
from semseg.errors import DataProblem, SemsegError


def dataset_root(data: DataConfig) -> Path:
    if data.root is None:
        raise SemsegError(
            f"config key 'data.root' is required for format {data.format!r}: "
            "set data.root=PATH/TO/DATASET"
        )
    if not data.root.is_dir():
        raise SemsegError(f"{data.root}: dataset folder not found; check data.root")
    return data.root


def find_root(data: DataConfig, marker: str, candidates: Iterable[str]) -> Path:
    """The folder below data.root that holds `marker` (users point at different levels)."""
    root = dataset_root(data)
    for relative in candidates:
        if (root / relative / marker).exists():
            return root / relative
    tried = ", ".join(str(root / relative / marker) for relative in candidates)
    raise SemsegError(
        f"{root}: not a {data.format} dataset (looked for {tried}); point data.root at it"
    )


def require_dir(path: Path, hint: str) -> Path:
    if not path.is_dir():
        raise SemsegError(f"{path}: folder not found; {hint}")
    return path


def read_name_list(path: Path) -> list[str]:
    """Sample names, one per line; only the first word counts (Oxford Pet lists add ids)."""
    if not path.is_file():
        raise SemsegError(f"{path}: split list not found; write one sample name per line")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SemsegError(
            f"{path}: unreadable split list ({type(err).__name__}); write it as UTF-8 text, "
            "one sample name per line"
        ) from None
    names = []
    for line in text.splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            names.append(words[0])
    return names


def files_by_stem(
    folder: Path, extensions: tuple[str, ...]
) -> tuple[dict[str, Path], list[DataProblem]]:
    """The folder's files with those extensions by stem; two files with one stem (a.jpg
    and a.png) are a problem: which one is meant is unknown (the first by name is kept)."""
    files: dict[str, Path] = {}
    problems = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in extensions or path.name.startswith("."):
            continue
        if path.stem in files:
            kept = files[path.stem].name
            problems.append(
                DataProblem(
                    path,
                    "duplicate stem",
                    f"{kept} and {path.name} share the name {path.stem!r}; remove or rename "
                    f"one ({kept} would be read)",
                )
            )
            continue
        files[path.stem] = path
    return files, problems


def masks_without_images(
    masks: dict[str, Path], image_stems: Iterable[str], image_dir: Path, suffix: str = ""
) -> list[DataProblem]:
    """Warnings for masks whose image (stem minus `suffix`) is nowhere in the image folder:
    nothing reads them, which usually means a misnamed or missing image."""
    images = set(image_stems)
    return [
        DataProblem(
            path,
            "mask without image",
            f"no image {stem.removesuffix(suffix)}.* in {image_dir}; add it or remove the mask",
            warning=True,
        )
        for stem, path in masks.items()
        if stem.removesuffix(suffix) not in images
    ]


def samples_from_names(
    names: Iterable[str],
    image_for: Callable[[str], Path | None],
    mask_for: Callable[[str], Path | None],
    missing_hint: str,
) -> tuple[list[Sample], list[DataProblem]]:
    """Pair each name with its files; a name whose image or mask is missing is a problem
    reported at the path where the file was expected."""
    samples, problems = [], []
    for name in names:
        image, mask = image_for(name), mask_for(name)
        if image is None or not image.exists():
            where = image or name
            problems.append(DataProblem(where, "missing image", f"no image for {name!r}"))
        elif mask is None or not mask.exists():
            problems.append(
                DataProblem(
                    mask or image, "missing mask", f"no mask for image {image.name}; {missing_hint}"
                )
            )
        else:
            samples.append(Sample(name, image, mask))
    return samples, problems


def pair_folders(
    image_dir: Path, mask_dir: Path, hint: str, names: Iterable[str] | None = None
) -> tuple[list[Sample], list[DataProblem]]:
    """Images and masks in two folders, matched by file stem; `names` (a split list)
    picks and orders them, else every image of the folder in name order. Duplicate stems
    and masks without an image are reported too."""
    images, image_problems = files_by_stem(require_dir(image_dir, hint), IMAGE_EXTENSIONS)
    masks, mask_problems = files_by_stem(require_dir(mask_dir, hint), MASK_EXTENSIONS)
    samples, problems = samples_from_names(
        images if names is None else names,
        images.get,
        masks.get,
        f"expected {mask_dir.name}/NAME.png",
    )
    orphans = masks_without_images(masks, images, image_dir)
    return samples, image_problems + mask_problems + problems + orphans
