"""`semseg.evaluate`: score a model (checkpoint, model folder, ONNX file) on a split of
its dataset (or another), with the per-class table, a JSON summary and optionally the
HTML report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from semseg.classes import ClassSet
from semseg.config import Config, load_config
from semseg.console import class_table, console, summary_line
from semseg.data import SegmentationDataset, eval_dataset, make_loader
from semseg.data.loading import SegmentationLoader
from semseg.data.registry import val_split_name
from semseg.deploy.sources import load_model
from semseg.engine.bundle import ModelBundle
from semseg.engine.distributed import current_world, join_world
from semseg.engine.evaluate import EvalResult, evaluate_model, sample_predictions
from semseg.engine.inference import InferenceSettings
from semseg.errors import SemsegError
from semseg.files import check_output_file, check_output_folder, write_json
from semseg.metrics import NAN_RULE, distribution
from semseg.report import write_report


@dataclass
class ModelOnSplit:
    """A model set up to run on one split of the configured data."""

    bundle: ModelBundle
    config: Config  # the model's, with the config file and overrides applied
    dataset: SegmentationDataset
    loader: SegmentationLoader
    split: str
    device: torch.device
    settings: InferenceSettings

    @property
    def classes(self) -> ClassSet:
        return self.bundle.classes

    @property
    def source(self) -> str:
        return self.bundle.source


def model_on_split(
    source: Path | str,
    split: str | None = None,
    overrides: list[str] | None = None,
    config_file: Path | str | None = None,
) -> ModelOnSplit:
    """The model's config, then `config_file`, then `overrides` (e.g. data.root=...)
    decide the data, device and inference settings; `split` defaults to validation.

    Raises:
        SemsegError: an unreadable model, bad config or data, or a dataset whose classes
            differ from the model's.
    """
    bundle = load_model(source)
    config = load_config(config_file, overrides, base=bundle.config.to_plain())
    classes = bundle.classes
    dataset = eval_dataset(config.data, split)
    if dataset.classes.names != classes.names:
        raise SemsegError(
            f"{source}: model classes {list(classes.names)} differ from the dataset's "
            f"{list(dataset.classes.names)}; evaluate on data with the model's classes"
        )
    world, device = join_world(config.train.device)  # under torchrun: this rank's shard
    shard = (world.rank, world.size) if world.active else None
    bundle.model.to(device)
    return ModelOnSplit(
        bundle,
        config,
        dataset,
        make_loader(dataset, config.data, config.eval.batch_size, shuffle=False, shard=shard),
        split or val_split_name(config.data),
        device,
        bundle.inference_settings(config.eval, device),
    )


def default_output(source: Path | str, name: str) -> Path:
    """NAME beside a checkpoint or ONNX file; in the working directory for a model folder
    or a Hub model (their folders are the model's, or a read-only cache)."""
    path = Path(source)
    if str(source).startswith("hf://") or path.is_dir():
        return Path(name)
    return path.with_name(name)


def evaluate(
    model: Path | str,
    split: str | None = None,
    overrides: list[str] | None = None,
    config_file: Path | str | None = None,
    out: Path | str | None = None,
    report: Path | str | None = None,
    worst: int = 6,
) -> dict[str, Any]:
    """Evaluate a model with its eval.* inference settings (whole image or sliding
    window, test-time scales and flip); print the per-class table.

    Args:
        model: a checkpoint (runs/NAME/best.pt), model folder, ONNX file or hf://OWNER/NAME.
        split: the split to score; default the dataset's validation split.
        overrides: `KEY=VALUE` config overrides, e.g. `["data.root=/data/camvid"]`.
        config_file: a YAML file applied over the model's config.
        out: the JSON summary to write; default eval.json beside the checkpoint or ONNX
            file (in the working directory for a folder or Hub model).
        report: a folder for the HTML report (figures, worst images); none by default.
        worst: how many of the lowest-mIoU images the report shows.

    Returns:
        The summary written to `out`: metrics (NaN rule applied), split, images,
        inference settings, dataset fingerprint, class bias.

    Raises:
        SemsegError: see `model_on_split`.
    """
    out = check_output_file(out or default_output(model, "eval.json"), "--out")
    if report is not None:
        report = check_output_folder(report, "--report")
    setup = model_on_split(model, split, overrides, config_file)
    network = setup.bundle.model
    config, classes = setup.config, setup.classes
    result = evaluate_model(
        network,
        setup.loader,
        classes.num_classes,
        classes.ignore_index,
        setup.device,
        settings=setup.settings,
        boundary_tolerance=config.eval.boundary_tolerance if config.eval.boundary_metrics else None,
    )
    metrics = result.confusion.compute()
    if result.boundary is not None:
        metrics |= result.boundary.compute()
    metrics["per_image_miou"] = distribution(result.image_miou)
    title = f"{setup.source} on {setup.split}"
    _print_result(setup, metrics, title)
    summary = _summary(setup, metrics)
    if not current_world().is_main:  # under torchrun rank 0 writes; all hold the result
        return summary
    write_json(out, summary)
    console.print(f"wrote {out}")
    if report is not None:
        page = _write_report(report, setup, network, result, metrics, title, worst)
        console.print(f"report: {page}")
    return summary


def _print_result(setup: ModelOnSplit, metrics: dict[str, Any], title: str) -> None:
    """The per-class table, the summary line, and a warning when the class bias was
    fitted on the split scored."""
    console.print(class_table(metrics, setup.classes.names, title))
    console.print(summary_line(metrics))
    fitted_on = (setup.bundle.class_bias_fit or {}).get("split")
    if fitted_on == setup.split:
        console.print(
            f"note: this model's class bias was fitted on {setup.split}, so these "
            "figures are optimistic; score a split it has not seen"
        )


def _summary(setup: ModelOnSplit, metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": setup.source,
        "model_kind": setup.bundle.kind,
        "split": setup.split,
        "images": len(setup.dataset),
        "dataset_fingerprint": setup.dataset.fingerprint(),
        "inference": setup.settings.describe(),
        "class_bias": setup.bundle.class_bias_fit,
        "class_names": list(setup.classes.names),
        "metrics": metrics,
        "nan_rule": NAN_RULE,
    }


def _write_report(
    folder: Path,
    setup: ModelOnSplit,
    model: torch.nn.Module,
    result: EvalResult,
    metrics: dict[str, Any],
    title: str,
    worst: int,
) -> Path:
    """The HTML report, with the `worst` lowest-mIoU images predicted again."""
    dataset = setup.dataset
    ranked = sorted((v, i) for i, v in enumerate(result.image_miou) if v == v)[:worst]
    rows = sample_predictions(model, dataset, [i for _, i in ranked], setup.settings, setup.device)
    worst_rows = [
        (dataset.sample_name(i), v, row) for (v, i), row in zip(ranked, rows, strict=True)
    ]
    return write_report(
        folder,
        title,
        setup.classes,
        metrics,
        result.confusion.matrix.cpu().numpy(),
        result.image_miou,
        worst_rows,
        {
            "model": setup.source,
            "split": setup.split,
            "images": len(dataset),
            "inference": setup.settings.describe(),
            "dataset fingerprint": dataset.fingerprint(),
        },
    )
