"""Dataset formats by name. A format is a function reading one split into a dataset."""

from __future__ import annotations

from collections.abc import Callable

from semseg.config import DataConfig
from semseg.data.base import SegmentationDataset
from semseg.errors import DataProblem, SemsegError
from semseg.registry import Registry

SplitReader = Callable[[DataConfig, str], SegmentationDataset]

#: Each entry's info: `default_splits`, the (train, val) split names used when the
#: config names none.
FORMATS: Registry[SplitReader] = Registry(
    "dataset format", "data.format", default_splits=("train", "val")
)


def register_format(
    name: str, default_splits: tuple[str, str] = ("train", "val")
) -> Callable[[SplitReader], SplitReader]:
    """Decorator registering a dataset format, so that configs can name it (`data.format`).

    Args:
        name: the format's name.
        default_splits: the (train, val) split names used when the config names none.

    The decorated function `read(data: DataConfig, split: str)` returns a
    SegmentationDataset (a FileDataset of image/mask paths, or an InMemoryDataset) with
    its ClassSet. Problems found while listing files go into `dataset.problems` rather
    than being raised, so that `semseg data check` can report them all.

    Raises:
        RuntimeError: the name is taken.
    """
    return FORMATS.register(name, default_splits=tuple(default_splits))


def train_split_name(data: DataConfig) -> str:
    return data.train_split or FORMATS.get(data.format).info["default_splits"][0]


def val_split_name(data: DataConfig) -> str:
    return data.val_split or FORMATS.get(data.format).info["default_splits"][1]


def read_split(data: DataConfig, split: str, strict: bool = True) -> SegmentationDataset:
    """The untransformed samples of one split. `strict` stops at the first problem found
    while listing files; `data check` passes False to collect them all."""
    _check_folder_only_keys(data)
    dataset = FORMATS.get(data.format).function(data, split)
    dataset.max_pixels = data.max_pixels
    errors = [problem for problem in dataset.problems if not problem.warning]
    if len(dataset) == 0 and not errors:
        errors.append(DataProblem(data.root, "empty split", f"split {split!r} has no samples"))
        dataset.problems.append(errors[0])
    if strict and errors:
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise SemsegError(f"{errors[0]}{more}; run 'semseg data check' for the full list")
    return dataset


def _check_folder_only_keys(data: DataConfig) -> None:
    if data.format == "folder":
        return
    defaults = DataConfig()
    for key in ("value_map", "mask_encoding", "mask_suffix", "binary_255", "classes"):
        if getattr(data, key) != getattr(defaults, key):
            raise SemsegError(
                f"config key 'data.{key}' applies to the folder format only; the "
                f"{data.format} format has its own label rules (remove the key)"
            )
