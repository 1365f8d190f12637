"""Training: `train` sets a run up and loops over `train_one_epoch` and `evaluate`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from semseg.classes import ClassSet
from semseg.config import Config
from semseg.console import class_table, console, summary_line, track
from semseg.data import (
    SegmentationDataset,
    eval_dataset,
    input_channels,
    make_loader,
    train_dataset,
)
from semseg.data.registry import val_split_name
from semseg.data.stats import auto_class_weights, dataset_stats
from semseg.engine.budget import Budget, parse_duration
from semseg.engine.calibrate import ClassBiasFit, calibrate_checkpoint
from semseg.engine.checkpoint import (
    load_checkpoint,
    model_from_checkpoint,
    model_record,
    save_checkpoint,
)
from semseg.engine.ema import ModelEMA
from semseg.engine.evaluate import evaluate, sample_predictions
from semseg.engine.inference import InferenceSettings
from semseg.engine.precision import depthwise_convs_in_fp32, resolve_amp
from semseg.engine.rundir import (
    create_run_dir,
    environment_record,
    write_json,
    write_metrics_log,
    write_text_atomic,
)
from semseg.engine.runtime import deterministic_mode, epoch_seed, resolve_device, seed_everything
from semseg.engine.schedule import LRSchedule, build_optimizer
from semseg.engine.step import TrainStep
from semseg.engine.tensorboard import TensorBoardLog
from semseg.errors import SemsegError
from semseg.losses import build_loss
from semseg.models import build_model
from semseg.models.encoders import freeze_encoder_stages
from semseg.models.pretrained import load_weights_file
from semseg.viz import save_curves_figure, save_samples_figure


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_metrics: dict[str, Any]


def train(config: Config, resume: Path | None = None) -> TrainResult:
    """Train as configured; with `resume`, continue the run that wrote that checkpoint."""
    with deterministic_mode(config.train.deterministic):
        return _train(config, resume)


def _train(config: Config, resume: Path | None) -> TrainResult:
    device = resolve_device(config.train.device)
    seed_everything(config.train.seed)
    resumed = load_checkpoint(resume) if resume else None
    if resumed is not None and "optimizer" not in resumed:
        raise SemsegError(f"{resume}: holds no training state; resume from last.pt, not best.pt")

    # Build and check everything before the run folder exists: a bad config or dataset
    # must not leave a half-made run behind.
    train_set = train_dataset(config.data)
    val_set = eval_dataset(config.data)
    classes = train_set.classes
    in_channels = input_channels(config.data)
    model = build_model(
        config.model.name, classes.num_classes, in_channels, **config.model.builder_options()
    )
    if config.model.weights is not None and resumed is None:
        load_weights_file(model, config.model.weights)
    if config.model.frozen_stages:
        freeze_encoder_stages(model, config.model.frozen_stages)
    model.to(device)
    if config.train.channels_last:
        model.to(memory_format=torch.channels_last)
    if device.type == "cpu":
        depthwise_convs_in_fp32(model)  # faster under bf16 autocast, a no-op without it
    loss_fn = build_loss(config.loss, classes, _auto_class_weights(config, train_set)).to(device)
    optimizer = build_optimizer(model, config.optim)
    generator = torch.Generator()
    train_loader = make_loader(train_set, config.data, config.data.batch_size, True, generator)
    val_loader = make_loader(val_set, config.data, config.eval.batch_size, False)
    # With eval.scales/eval.flip: what the class-bias fit scores. Validation runs one pass:
    # it ranks checkpoints, and test-time augmentation would cost its 2-6x every time.
    inference = InferenceSettings.from_config(config.eval, device)
    steps_per_epoch = -(-len(train_loader) // config.train.accumulate_steps)  # optimiser steps
    budget = None
    if config.train.time_budget:
        spent = resumed.get("budget_spent_s", 0.0) if resumed else 0.0
        budget = Budget(parse_duration(config.train.time_budget), spent_before=spent)
    schedule = LRSchedule(
        optimizer,
        config.optim,
        total_steps=steps_per_epoch * config.train.epochs,
        warmup_steps=round(config.optim.warmup_epochs * steps_per_epoch),
        progress=budget.progress if budget else None,
    )
    trainer = TrainStep(
        model,
        loss_fn,
        optimizer,
        schedule,
        device,
        amp_dtype=resolve_amp(config.train.amp, device),
        grad_clip=config.optim.grad_clip,
        accumulate_steps=config.train.accumulate_steps,
        aux_weight=config.loss.aux_weight,
        ema=ModelEMA(model, config.train.ema_decay) if config.train.ema_decay else None,
        forward=torch.compile(model) if config.train.compile else None,
    )
    # What is validated and saved: the EMA weights when enabled, else the model itself.
    evaluated = trainer.ema.module if trainer.ema else model
    state = _TrainState()
    if resumed is not None:
        model.load_state_dict(resumed.get("train_state_dict", resumed["state_dict"]))
        evaluated.load_state_dict(resumed["state_dict"])
        optimizer.load_state_dict(resumed["optimizer"])
        schedule.load_state_dict(resumed["schedule"])
        trainer.scaler.load_state_dict(resumed["scaler"])
        state = _TrainState.from_checkpoint(resumed)
        run_dir = Path(resume).parent
        console.print(f"resuming {run_dir} after epoch {state.epoch}")
    else:
        run_dir = create_run_dir(config)
        console.print(f"run folder: {run_dir}")
    write_text_atomic(run_dir / "config.yaml", config.to_yaml())
    write_json(run_dir / "env.json", environment_record(device, train_set.fingerprint()))
    write_metrics_log(run_dir / "metrics.jsonl", state.history)
    board = TensorBoardLog(run_dir / "tensorboard") if config.train.tensorboard else None

    def checkpoint(epoch: int, with_training_state: bool) -> dict[str, Any]:
        payload = {
            "model": model_record(config, classes.num_classes, in_channels),
            "state_dict": evaluated.state_dict(),
            "classes": classes.to_dict(),
            "config": config.to_plain(),
            "epoch": epoch,
            "metrics": state.best_metrics if not with_training_state else state.last_metrics,
        }
        if with_training_state:
            payload.update(
                optimizer=optimizer.state_dict(),
                schedule=schedule.state_dict(),
                scaler=trainer.scaler.state_dict(),
                budget_spent_s=budget.spent() if budget else 0.0,
                **state.to_dict(),
            )
            if trainer.ema is not None:
                payload["train_state_dict"] = model.state_dict()
        return payload

    for epoch in range(state.epoch, config.train.epochs):
        _seed_epoch(config.train.seed, epoch, generator)
        record = {"epoch": epoch + 1, "lr": schedule.lr}
        last_good = f"{run_dir / 'last.pt'} (epoch {epoch})" if epoch else "no checkpoint yet"
        record |= trainer.run_epoch(
            train_loader,
            f"epoch {epoch + 1}/{config.train.epochs}",
            last_good,
            stop=budget.exhausted if budget else None,
        )
        final = epoch + 1 == config.train.epochs or (budget is not None and budget.exhausted())
        if (epoch + 1) % config.train.val_every == 0 or final:
            result = evaluate(
                evaluated,
                val_loader,
                classes.num_classes,
                classes.ignore_index,
                device,
                loss_fn,
                settings=inference.single_pass(),
            )
            metrics = result.confusion.compute()
            record |= {
                "val_loss": result.mean_loss,
                "val_miou": metrics["miou"],
                "val_pixel_accuracy": metrics["pixel_accuracy"],
                "val_mean_accuracy": metrics["mean_accuracy"],
            }
            schedule.on_validation(metrics["miou"])
            state.last_metrics = metrics
            if metrics["miou"] > state.best_miou or state.best_epoch == 0:
                state.best_miou, state.best_epoch, state.best_metrics = (
                    metrics["miou"],
                    epoch + 1,
                    metrics,
                )
                save_checkpoint(run_dir / "best.pt", checkpoint(epoch + 1, False))
        state.epoch = epoch + 1
        state.history.append(record)
        _print_epoch(record)
        write_metrics_log(run_dir / "metrics.jsonl", state.history)
        if board is not None:
            board.write(record)
        save_checkpoint(run_dir / "last.pt", checkpoint(epoch + 1, True))
        if final:
            if budget is not None and budget.exhausted():
                console.print(
                    f"time budget of {config.train.time_budget} spent after {epoch + 1} epochs"
                )
            break

    class_bias = None
    if config.train.fit_class_bias:
        best_path = run_dir / "best.pt"
        split = val_split_name(config.data)
        training_stats = dataset_stats(train_set, lambda items: track(items, "class statistics"))
        class_bias = calibrate_checkpoint(
            load_checkpoint(best_path),
            best_path,
            best_path,
            val_loader,
            split,
            training_stats.pixels,
            device,
            inference,
        )
        console.print(class_bias.describe(classes.names))
    _finish(run_dir, config, classes, state, val_set, device, class_bias)
    return TrainResult(run_dir, state.best_epoch, state.best_metrics)


def _auto_class_weights(config: Config, train_set: SegmentationDataset) -> list[float] | None:
    """`class_weights=auto`: the weights computed from the training split."""
    if config.loss.class_weights != "auto":
        return None
    weights = auto_class_weights(
        train_set, config.loss.class_weighting, lambda items: track(items, "class statistics")
    )
    shown = ", ".join(
        f"{name} {w:.3f}" for name, w in zip(train_set.classes.names, weights, strict=True)
    )
    console.print(f"class weights ({config.loss.class_weighting}): {shown}")
    return weights


@dataclass
class _TrainState:
    """What a resumed run needs beyond model, optimiser and schedule."""

    epoch: int = 0
    best_epoch: int = 0
    best_miou: float = -math.inf
    best_metrics: dict[str, Any] | None = None
    last_metrics: dict[str, Any] | None = None
    history: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        self.history = list(self.history or [])

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_epoch": self.best_epoch,
            "best_miou": self.best_miou,
            "best_metrics": self.best_metrics,
            "history": self.history,
        }

    @classmethod
    def from_checkpoint(cls, payload: dict[str, Any]) -> _TrainState:
        return cls(
            epoch=payload["epoch"],
            best_epoch=payload["best_epoch"],
            best_miou=payload["best_miou"],
            best_metrics=payload["best_metrics"],
            last_metrics=payload["metrics"],
            history=payload["history"],
        )


def _seed_epoch(seed: int, epoch: int, generator: torch.Generator) -> None:
    value = epoch_seed(seed, epoch)
    seed_everything(value)
    generator.manual_seed(value)


def _print_epoch(record: dict[str, Any]) -> None:
    line = (
        f"epoch {record['epoch']:>3}  loss {record['train_loss']:.4f}  "
        f"lr {record['lr']:.2e}  {record['images_per_s']:.1f} img/s"
    )
    if record.get("val_loss") is not None:
        line += f"  val loss {record['val_loss']:.4f}"
    if "val_miou" in record:
        line += f"  val mIoU {100 * record['val_miou']:.2f}"
    console.print(line)


def _finish(
    run_dir: Path,
    config: Config,
    classes: ClassSet,
    state: _TrainState,
    val_set: SegmentationDataset,
    device: torch.device,
    class_bias: ClassBiasFit | None,
) -> None:
    """Summary, curves, sample predictions of the best model, per-class table."""
    save_curves_figure(run_dir / "curves.png", state.history)
    best_path = run_dir / "best.pt"
    model = model_from_checkpoint(load_checkpoint(best_path), best_path).to(device).eval()
    indices = list(range(min(config.train.sample_images, len(val_set))))
    settings = InferenceSettings.from_config(config.eval, device)
    rows = sample_predictions(model, val_set, indices, settings, device)
    names = [val_set.sample_name(index) for index in indices]
    save_samples_figure(run_dir / "samples.png", rows, classes, names)
    write_json(
        run_dir / "summary.json",
        {
            "best_epoch": state.best_epoch,
            "epochs": state.epoch,
            "best": state.best_metrics,
            "class_names": list(classes.names),
            "nan_rule": "a class absent from both ground truth and prediction has NaN (null) "
            "IoU/Dice and is left out of the means",
            "train_time_s": sum(record["epoch_time_s"] for record in state.history),
        }
        | ({"class_bias": class_bias.record(classes.names)} if class_bias else {}),
    )
    title = f"validation, best.pt (epoch {state.best_epoch})"
    console.print(class_table(state.best_metrics, classes.names, title))
    console.print(summary_line(state.best_metrics))
    console.print(f"run folder: {run_dir}  (best.pt, last.pt, curves.png, samples.png)")
