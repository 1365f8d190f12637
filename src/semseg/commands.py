"""What the eval and predict commands do, as functions the CLI and tests call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from semseg.boundary import BoundaryMetrics
from semseg.classes import ClassSet
from semseg.config import Config, load_config
from semseg.console import class_table, console, progress_bar, summary_line, track
from semseg.data import SegmentationDataset, eval_dataset, make_loader, train_dataset
from semseg.data.io import IMAGE_EXTENSIONS, MASK_EXTENSIONS, read_mask
from semseg.data.labels import LabelDecoder
from semseg.data.listing import files_by_stem
from semseg.data.registry import val_split_name
from semseg.data.stats import dataset_stats
from semseg.engine.calibrate import ClassBiasFit, calibrate_checkpoint
from semseg.engine.checkpoint import checkpoint_classes, load_checkpoint, model_from_checkpoint
from semseg.engine.evaluate import evaluate, sample_predictions
from semseg.engine.inference import InferenceSettings
from semseg.engine.predictor import load, to_image_tensor
from semseg.engine.rundir import write_json
from semseg.engine.runtime import resolve_device
from semseg.errors import SemsegError
from semseg.metrics import ConfusionMatrix, per_image_miou
from semseg.report import write_report
from semseg.viz import overlay


def evaluation_config(
    checkpoint: dict[str, Any], config_file: Path | None, overrides: list[str]
) -> Config:
    """The checkpoint's own config, then a config file, then overrides (e.g. data.root)."""
    return load_config(config_file, overrides, base=checkpoint["config"])


@dataclass
class _Evaluation:
    """A checkpoint's model set up to run on one split of the configured data."""

    payload: dict[str, Any]
    config: Config
    classes: ClassSet
    dataset: SegmentationDataset
    loader: DataLoader
    split: str
    device: torch.device
    settings: InferenceSettings


def _evaluation(
    checkpoint_path: Path, config_file: Path | None, overrides: list[str], split: str | None
) -> _Evaluation:
    payload = load_checkpoint(checkpoint_path)
    config = evaluation_config(payload, config_file, overrides)
    classes = checkpoint_classes(payload)
    dataset = eval_dataset(config.data, split)
    if dataset.classes.names != classes.names:
        raise SemsegError(
            f"{checkpoint_path}: model classes {list(classes.names)} differ from the dataset's "
            f"{list(dataset.classes.names)}; evaluate on data with the model's classes"
        )
    device = resolve_device(config.train.device)
    return _Evaluation(
        payload,
        config,
        classes,
        dataset,
        make_loader(dataset, config.data, config.eval.batch_size, shuffle=False),
        split or val_split_name(config.data),
        device,
        InferenceSettings.from_config(config.eval, device),
    )


def run_eval(
    checkpoint_path: Path,
    config_file: Path | None = None,
    overrides: list[str] | None = None,
    split: str | None = None,
    out: Path | None = None,
    report: Path | None = None,
    worst: int = 6,
) -> dict[str, Any]:
    """Evaluate a checkpoint on a split (default: the validation split) with the
    configured inference mode; print the per-class table, write the JSON summary (default:
    eval.json beside the checkpoint) and, with `report`, the HTML report."""
    setup = _evaluation(checkpoint_path, config_file, overrides or [], split)
    config, classes, dataset, settings = setup.config, setup.classes, setup.dataset, setup.settings
    device, split_name = setup.device, setup.split
    model = model_from_checkpoint(setup.payload, checkpoint_path).to(device)
    tolerance = config.eval.boundary_tolerance if config.eval.boundary_metrics else None
    result = evaluate(
        model,
        setup.loader,
        classes.num_classes,
        classes.ignore_index,
        device,
        settings=settings,
        boundary_tolerance=tolerance,
    )
    metrics = result.confusion.compute()
    if result.boundary is not None:
        metrics |= result.boundary.compute()
    metrics["per_image_miou"] = distribution(result.image_miou)
    title = f"{checkpoint_path} on {split_name}"
    console.print(class_table(metrics, classes.names, title))
    console.print(summary_line(metrics))
    fitted_on = (setup.payload.get("class_bias_fit") or {}).get("split")
    if fitted_on == split_name:
        console.print(
            f"note: this checkpoint's class bias was fitted on {split_name}, so these figures "
            "are optimistic; score a split it has not seen"
        )
    summary = {
        "checkpoint": str(checkpoint_path),
        "split": split_name,
        "images": len(dataset),
        "dataset_fingerprint": dataset.fingerprint(),
        "inference": settings.describe(),
        "class_bias": setup.payload.get("class_bias_fit"),
        "class_names": list(classes.names),
        "metrics": metrics,
        "nan_rule": NAN_RULE,
    }
    out = out or Path(checkpoint_path).with_name("eval.json")
    write_json(out, summary)
    console.print(f"wrote {out}")
    if report is not None:
        ranked = sorted((v, i) for i, v in enumerate(result.image_miou) if v == v)[:worst]
        rows = sample_predictions(model, dataset, [i for _, i in ranked], settings, device)
        worst_rows = [
            (dataset.sample_name(i), v, row) for (v, i), row in zip(ranked, rows, strict=True)
        ]
        page = write_report(
            report,
            title,
            classes,
            metrics,
            result.confusion.matrix.cpu().numpy(),
            result.image_miou,
            worst_rows,
            {
                "checkpoint": checkpoint_path,
                "split": split_name,
                "images": len(dataset),
                "inference": settings.describe(),
                "dataset fingerprint": summary["dataset_fingerprint"],
            },
        )
        console.print(f"report: {page}")
    return summary


def run_calibrate(
    checkpoint_path: Path,
    config_file: Path | None = None,
    overrides: list[str] | None = None,
    split: str | None = None,
    out: Path | None = None,
) -> ClassBiasFit:
    """Fit the class-prior logit adjustment (engine.calibrate) maximising mIoU on a split
    (default: validation) and write the checkpoint with it (default: NAME_calibrated.pt
    beside it)."""
    setup = _evaluation(checkpoint_path, config_file, overrides or [], split)
    out = out or checkpoint_path.with_name(f"{checkpoint_path.stem}_calibrated.pt")
    # The prior the network learnt: the training split's (counted once, then cached).
    training = dataset_stats(
        train_dataset(setup.config.data), lambda x: track(x, "class statistics")
    )
    fit = calibrate_checkpoint(
        setup.payload,  # loaded once, for the class check and the fit
        checkpoint_path,
        out,
        setup.loader,
        setup.split,
        training.pixels,
        setup.device,
        setup.settings,
    )
    console.print(fit.describe(setup.classes.names))
    console.print(f"wrote {out}; score it on another split: semseg eval {out} --split SPLIT")
    return fit


NAN_RULE = (
    "null marks a class absent from both ground truth and prediction; it is left out of the means"
)


def distribution(values: list[float]) -> dict[str, Any]:
    """Summary of per-image scores (NaN images, with nothing labelled, left out)."""
    finite = np.array([v for v in values if v == v])
    if not finite.size:
        return {"images": 0}
    return {
        "images": int(finite.size),
        "mean": float(finite.mean()),
        "median": float(np.median(finite)),
        "p10": float(np.percentile(finite, 10)),
        "p90": float(np.percentile(finite, 90)),
        "min": float(finite.min()),
    }


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given; folders contribute their images (sorted)."""
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise SemsegError(f"{item}: folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            files.extend(found)
        elif item.is_file():
            files.append(item)
        else:
            raise SemsegError(f"{item}: no such file or folder; check the input paths")
    return files


def run_predict(
    checkpoint_path: Path,
    inputs: list[Path],
    out_dir: Path,
    overlays: bool = True,
    device: str | None = None,
    eval_overrides: dict[str, Any] | None = None,
) -> list[Path]:
    """Write OUT/NAME.png (palette PNG of class indices) and OUT/NAME_overlay.png;
    `eval_overrides` (e.g. {"flip": True}) change the checkpoint's eval settings."""
    predictor = load(checkpoint_path, device=device)
    if eval_overrides:
        settings = predictor.config.eval.model_copy(update=eval_overrides)
        predictor.inference = InferenceSettings.from_config(settings, predictor.device)
    files = expand_inputs(inputs)
    classes = predictor.classes
    if classes.num_classes > 256:
        raise SemsegError(f"{checkpoint_path}: {classes.num_classes} classes do not fit a PNG")
    out_dir.mkdir(parents=True, exist_ok=True)
    flat_palette = np.asarray(classes.color_table(), dtype=np.uint8).reshape(-1).tolist()
    written = []
    with progress_bar() as progress:
        task = progress.add_task("predict", total=len(files), info="")
        for path in files:
            image = to_image_tensor(path).permute(1, 2, 0).numpy()  # RGB, EXIF applied
            mask = predictor.predict(image)
            index_png = Image.fromarray(mask.astype(np.uint8), mode="P")
            index_png.putpalette(flat_palette)
            target = out_dir / f"{path.stem}.png"
            index_png.save(target)
            written.append(target)
            if overlays:
                blended = overlay(image, mask, classes)
                Image.fromarray(blended).save(out_dir / f"{path.stem}_overlay.png")
            progress.advance(task)
    console.print(f"wrote {len(written)} mask(s) to {out_dir}")
    return written


def run_score(
    pred_dir: Path,
    gt_dir: Path,
    classes_file: Path,
    out: Path | None = None,
    pred_rgb: bool = False,
    tolerance: float = 0.0075,
) -> dict[str, Any]:
    """Score a folder of predicted masks against ground truth, with no model: any tool's
    predictions. Files pair by stem; every ground-truth mask needs a prediction."""
    classes = ClassSet.from_yaml(classes_file)
    for folder in (pred_dir, gt_dir):
        if not folder.is_dir():
            raise SemsegError(f"{folder}: folder not found; pass folders of mask PNGs")
    truths = files_by_stem(gt_dir, MASK_EXTENSIONS)
    preds = files_by_stem(pred_dir, MASK_EXTENSIONS)
    missing = sorted(set(truths) - set(preds))
    if not truths:
        raise SemsegError(f"{gt_dir}: no ground-truth masks ({', '.join(MASK_EXTENSIONS)})")
    if missing:
        raise SemsegError(
            f"{pred_dir}: {len(missing)} ground-truth mask(s) have no prediction, e.g. "
            f"{missing[0]}; name predictions like the ground truth (NAME.png)"
        )
    truth_decoder = LabelDecoder(classes)
    pred_decoder = LabelDecoder(classes, rgb=pred_rgb)
    confusion = ConfusionMatrix(classes.num_classes, classes.ignore_index)
    boundary = BoundaryMetrics(classes.num_classes, classes.ignore_index, tolerance)
    image_miou = []
    for name in track(sorted(truths), "scoring"):
        truth = torch.from_numpy(truth_decoder.decode(*read_mask(truths[name]), truths[name]))
        pred = torch.from_numpy(pred_decoder.decode(*read_mask(preds[name]), preds[name]))
        if pred.shape != truth.shape:
            raise SemsegError(
                f"{preds[name]}: prediction is {pred.shape[1]}x{pred.shape[0]}, ground truth "
                f"{truth.shape[1]}x{truth.shape[0]} (WxH); predict at the label resolution"
            )
        pred, truth = pred.long()[None], truth.long()[None]
        confusion.update(pred, truth)
        boundary.update(pred, truth)
        image_miou += per_image_miou(pred, truth, classes.num_classes, classes.ignore_index)
    metrics = confusion.compute() | boundary.compute()
    metrics["per_image_miou"] = distribution([float(v) for v in image_miou])
    console.print(class_table(metrics, classes.names, f"{pred_dir} against {gt_dir}"))
    console.print(summary_line(metrics))
    extra = sorted(set(preds) - set(truths))
    if extra:
        console.print(f"note: {len(extra)} prediction(s) without ground truth were not scored")
    summary = {
        "predictions": str(pred_dir),
        "ground_truth": str(gt_dir),
        "images": len(truths),
        "class_names": list(classes.names),
        "metrics": metrics,
        "nan_rule": NAN_RULE,
    }
    if out is not None:
        write_json(out, summary)
        console.print(f"wrote {out}")
    return summary
