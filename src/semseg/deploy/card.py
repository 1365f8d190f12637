"""The model card (README.md) of a model folder: Hub front matter, then what a user of
the model needs: classes, input, metrics with how they were measured, training recipe,
usage, licence."""

from __future__ import annotations

import math
from typing import Any

from semseg.data.registry import val_split_name
from semseg.engine.bundle import ModelBundle


def model_card(bundle: ModelBundle, record: dict[str, Any], licence: str) -> str:
    config = bundle.config
    title = f"{record['name']} on {config.data.format}"
    sections = [
        _front_matter(record, config.data.format, licence),
        f"# {title}\n\nA semantic-segmentation model trained with "
        f"[semseg](https://pypi.org/project/semseg/): {len(bundle.classes.names)} classes.",
        _classes(bundle),
        _input(bundle),
        _metrics(bundle),
        _recipe(bundle, record),
        _usage(),
        f"## Licence\n\n{licence} (set with `semseg export --licence`; check the licences "
        "of the training data and of any pretrained encoder weights).",
    ]
    return "\n\n".join(sections) + "\n"


def _front_matter(record: dict[str, Any], dataset: str, licence: str) -> str:
    return "\n".join(
        [
            "---",
            "library_name: semseg",
            f"license: {licence}",
            "pipeline_tag: image-segmentation",
            "tags:",
            "- semantic-segmentation",
            "- semseg",
            f"- {record['name']}",
            f"- {dataset}",
            "---",
        ]
    )


def _classes(bundle: ModelBundle) -> str:
    classes = bundle.classes
    rows = [
        f"| {index} | {name} | {tuple(colour)} |"
        for index, (name, colour) in enumerate(zip(classes.names, classes.palette, strict=True))
    ]
    return "\n".join(
        [
            "## Classes",
            "",
            f"Pixels labelled {classes.ignore_index} in the ground truth are ignored.",
            "",
            "| index | class | colour (RGB) |",
            "|---|---|---|",
            *rows,
        ]
    )


def _input(bundle: ModelBundle) -> str:
    data = bundle.config.data
    mean, std = data.normalization()
    channels = "one gray channel" if data.image_mode == "gray" else "RGB"
    return (
        "## Input\n\n"
        f"An image of any size, {channels}, 8 bits per channel, scaled to [0, 1] and "
        f"normalised with mean {list(mean)} and std {list(std)}; the model pads it to its "
        "stride internally and returns logits (N x classes x H x W) at the input's size. "
        "The class of a pixel is the argmax over the logits."
        + (
            " The class bias fitted after training is part of the model."
            if bundle.info.get("class_bias")
            else ""
        )
    )


def _metrics(bundle: ModelBundle) -> str:
    metrics = bundle.info.get("metrics")
    split = val_split_name(bundle.config.data)
    if not metrics:
        return "## Metrics\n\nNone recorded with this checkpoint."
    rows = [
        f"| {name} | {_percent(iou)} |"
        for name, iou in zip(bundle.classes.names, metrics["iou"], strict=True)
    ]
    return "\n".join(
        [
            "## Metrics",
            "",
            f"On the `{split}` split of `{bundle.config.data.format}`, measured by `semseg "
            f"train` when it saved this model (epoch {bundle.info.get('epoch')}), one "
            "forward pass per image, before any class bias. Reproduce with "
            f"`semseg eval MODEL --split {split}` (with the dataset at `data.root`).",
            "",
            f"mIoU {_percent(metrics['miou'])}, pixel accuracy "
            f"{_percent(metrics['pixel_accuracy'])}, mean accuracy "
            f"{_percent(metrics['mean_accuracy'])}.",
            "",
            "| class | IoU (%) |",
            "|---|---|",
            *rows,
        ]
    )


def _percent(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.1f}"


def _recipe(bundle: ModelBundle, record: dict[str, Any]) -> str:
    config = bundle.config
    options = ", ".join(f"{k}={v}" for k, v in record["options"].items() if v is not None)
    loss = " + ".join(f"{term.weight} x {term.name}" for term in config.loss.resolved_terms())
    duration = config.train.time_budget or f"{config.train.epochs} epochs"
    return "\n".join(
        [
            "## Training recipe",
            "",
            f"- model: `{record['name']}`" + (f" ({options})" if options else ""),
            f"- data: `{config.data.format}`, crops of {config.data.crop_size}, batch "
            f"{config.data.batch_size}",
            f"- loss: {loss}"
            + (f", class weights {config.loss.class_weights}" if config.loss.class_weights else ""),
            f"- optimiser: {config.optim.name}, lr {config.optim.lr}, {config.optim.schedule} "
            f"schedule, {duration}",
            "",
            "The full resolved configuration is `config` in `config.json`.",
        ]
    )


def _usage() -> str:
    return "\n".join(
        [
            "## Use",
            "",
            "```python",
            "import semseg",
            "",
            'predictor = semseg.load("THIS_FOLDER")   # or "hf://OWNER/NAME"',
            'mask = predictor.predict("photo.jpg")     # H x W class indices',
            "```",
            "",
            "or `semseg predict THIS_FOLDER photo.jpg --out predictions/`.",
        ]
    )
