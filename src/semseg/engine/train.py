"""Training, in the shape of torchvision's reference scripts: build the run, restore it
when resuming, then for each epoch train, validate and save; at the end fit the class
bias (optional) and write the summary, figures and per-class table."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semseg.config import Config
from semseg.console import class_table, console, summary_line, track
from semseg.data.registry import val_split_name
from semseg.data.sampling import rank_seed
from semseg.data.stats import dataset_stats
from semseg.engine.calibrate import ClassBiasFit, calibrate_checkpoint
from semseg.engine.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from semseg.engine.distributed import deferred_interrupts, join_world
from semseg.engine.epoch import train_one_epoch
from semseg.engine.evaluate import evaluate_model, sample_predictions
from semseg.engine.rundir import (
    create_run_dir,
    environment_record,
    named_run_dir,
    write_metrics_log,
)
from semseg.engine.runtime import deterministic_mode, epoch_seed, seed_everything
from semseg.engine.setup import TrainingRun, build_run
from semseg.engine.tensorboard import TensorBoardLog
from semseg.engine.train_state import (
    TrainState,
    model_checkpoint,
    restore,
    training_checkpoint,
)
from semseg.errors import SemsegError
from semseg.files import check_output_folder, write_json, write_text_atomic
from semseg.metrics import NAN_RULE
from semseg.viz import save_curves_figure, save_samples_figure


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_metrics: dict[str, Any]


def train(config: Config, resume: Path | str | None = None) -> TrainResult:
    """Train as configured and write the run folder (train.output_dir / NAME).

    Args:
        config: the experiment (`semseg.load_config`).
        resume: a run's last.pt: continue that run in its folder, from the epoch after
            the one saved, exactly as if it had not stopped (train.resume=auto finds it).

    Returns:
        The run folder, the best validation epoch and its metrics (best.pt holds it).

    Raises:
        SemsegError: a bad config, dataset or checkpoint (before anything is written),
            or a training loss that became non-finite (last.pt stays the last good one).
    """
    with deterministic_mode(config.train.deterministic):
        return _train(config, Path(resume) if resume else None)


def _train(config: Config, resume: Path | None) -> TrainResult:
    world, _ = join_world(config.train.device)  # under torchrun: one process of several
    check_output_folder(config.train.output_dir, "train.output_dir")
    resume = resume or world.broadcast(_auto_resume(config))
    resumed = _resume_payload(resume) if resume else None
    run = build_run(config, resumed)  # everything checked; nothing written yet
    state = restore(run, resumed) if resumed else TrainState()
    run_dir = world.main_computes(lambda: _open_run_dir(run, state, resume))
    try:
        with deferred_interrupts(world):
            _run_epochs(run, state, run_dir)
        class_bias = _fit_class_bias(run, run_dir) if config.train.fit_class_bias else None
        if world.is_main:
            _finish(run, state, run_dir, class_bias)
    except BaseException as error:
        if world.is_main:
            _mark_stopped(run, state, run_dir, error)
        raise
    return TrainResult(run_dir, state.best_epoch, state.best_metrics)


def _auto_resume(config: Config) -> Path | None:
    """train.resume=auto: the run folder's last.pt when it exists."""
    if config.train.resume != "auto":
        return None
    last = named_run_dir(config) / "last.pt"
    return last if last.is_file() else None


def _run_epochs(run: TrainingRun, state: TrainState, run_dir: Path) -> None:
    """Train, validate when due and save, epoch after epoch, until the last epoch or the
    end of the time budget."""
    config = run.config
    board = None
    if config.train.tensorboard and run.world.is_main:
        board = TensorBoardLog(run_dir / "tensorboard")
    for epoch in range(state.epoch, config.train.epochs):
        record = _train_epoch(run, state, epoch, run_dir)
        final = epoch + 1 == config.train.epochs or bool(run.budget and run.budget.exhausted())
        if (epoch + 1) % config.train.val_every == 0 or final:
            record |= _validate(run, state, epoch, run_dir)
        _end_epoch(run, state, record, run_dir, board)
        if final:
            if run.budget is not None and run.budget.exhausted():
                console.print(
                    f"time budget of {config.train.time_budget} spent after {epoch + 1} epochs"
                )
            return


def _resume_payload(resume: Path) -> dict[str, Any]:
    payload = load_checkpoint(resume)
    if "optimizer" not in payload:
        raise SemsegError(f"{resume}: holds no training state; resume from last.pt, not best.pt")
    return payload


def _open_run_dir(run: TrainingRun, state: TrainState, resume: Path | None) -> Path:
    """The run folder (the resumed run's own, or a new one) with the resolved config,
    the environment record and the metric log so far."""
    if resume is not None:
        run_dir = resume.parent
        # The earlier error may hold brackets (gloo's '[.../pair.cc:545]'): not markup.
        message = f"resuming {run_dir} after epoch {state.epoch}{_how_it_stopped(run_dir)}"
        console.print(message, markup=False)
    else:
        run_dir = create_run_dir(run.config, reuse=run.config.train.resume == "auto")
        console.print(f"run folder: {run_dir}")
    write_text_atomic(run_dir / "config.yaml", run.config.to_yaml())
    write_json(run_dir / "env.json", environment_record(run.device, run.train_set.fingerprint()))
    write_metrics_log(run_dir / "metrics.jsonl", state.history)
    return run_dir


def _train_epoch(run: TrainingRun, state: TrainState, epoch: int, run_dir: Path) -> dict[str, Any]:
    """One epoch from its own seed (so a resumed run draws what an uninterrupted one
    would); the epoch's record so far, with the samples skipped as broken."""
    seed = epoch_seed(run.config.train.seed, epoch)
    seed_everything(rank_seed(seed, run.world.rank))  # augmentations differ across ranks
    run.generator.manual_seed(seed)  # the epoch's order: the same on every rank
    run.train_loader.set_epoch(epoch)
    record = {"epoch": epoch + 1, "lr": run.step.schedule.lr}
    last_good = f"{run_dir / 'last.pt'} (epoch {epoch})" if epoch else "no checkpoint yet"
    record |= train_one_epoch(
        run.step,
        run.train_loader,
        f"epoch {epoch + 1}/{run.config.train.epochs}",
        last_good,
        stop=lambda: _should_stop(run),
    )
    if run.world.any(run.world.interrupted):  # every rank stopped at the same step
        raise KeyboardInterrupt
    record["images_per_s"] = run.world.sum(record["images_per_s"])  # all processes'
    if run.config.data.on_error == "skip":
        met = run.world.gather(run.train_loader.take_skipped())
        skipped = [item for part in met for item in part]
        state.skipped |= {item.path: f"{item.kind}: {item.detail}" for item in skipped}
        record["skipped"] = len({item.path for item in skipped})  # broken files met
    return record


def _should_stop(run: TrainingRun) -> bool:
    """Whether the epoch ends here: the budget is spent or (under torchrun) a process was
    interrupted. Every rank asks at the same steps and gets the same answer."""
    exhausted = run.budget is not None and run.budget.exhausted()
    return run.world.any(run.world.interrupted) or exhausted


def _validate(run: TrainingRun, state: TrainState, epoch: int, run_dir: Path) -> dict[str, Any]:
    """Validation of the evaluated weights, one pass (it ranks checkpoints; test-time
    augmentation would cost its 2-6x every time); saves best.pt when they improved."""
    classes = run.classes
    result = evaluate_model(
        run.evaluated,
        run.val_loader,
        classes.num_classes,
        classes.ignore_index,
        run.device,
        run.step.loss_fn,
        settings=run.inference.single_pass(),
    )
    metrics = result.confusion.compute()
    run.step.schedule.on_validation(metrics["miou"])
    state.last_metrics = metrics
    if state.improved_by(metrics):
        state.best_miou, state.best_epoch, state.best_metrics = metrics["miou"], epoch + 1, metrics
        if run.world.is_main:
            save_checkpoint(run_dir / "best.pt", model_checkpoint(run, epoch + 1, metrics))
    return {
        "val_loss": result.mean_loss,
        "val_miou": metrics["miou"],
        "val_pixel_accuracy": metrics["pixel_accuracy"],
        "val_mean_accuracy": metrics["mean_accuracy"],
    }


def _end_epoch(
    run: TrainingRun,
    state: TrainState,
    record: dict[str, Any],
    run_dir: Path,
    board: TensorBoardLog | None,
) -> None:
    """Log the epoch (console, metrics.jsonl, TensorBoard) and save last.pt (rank 0)."""
    state.epoch = record["epoch"]
    state.history.append(record)
    state.budget_spent_s = run.budget.spent() if run.budget else 0.0
    if not run.world.is_main:
        return
    _print_epoch(record)
    write_metrics_log(run_dir / "metrics.jsonl", state.history)
    if state.skipped:
        lines = "".join(f"{path}\t{why}\n" for path, why in state.skipped.items())
        write_text_atomic(run_dir / "skipped.txt", lines)
    if board is not None:
        board.write(record)
    save_checkpoint(run_dir / "last.pt", training_checkpoint(run, state))


def _fit_class_bias(run: TrainingRun, run_dir: Path) -> ClassBiasFit:
    """train.fit_class_bias: fit best.pt's class bias on the validation split, with the
    eval.* test-time augmentation, and write it into best.pt. (Under torchrun every rank
    scores its shard of the split; rank 0 writes.)"""
    best_path = run_dir / "best.pt"
    run.world.barrier()  # rank 0 has written best.pt
    training_stats = run.world.main_computes(
        lambda: dataset_stats(
            run.train_set,
            lambda items: track(items, "class statistics"),
            skip_broken=run.config.data.on_error == "skip",
        )
    )
    fit = calibrate_checkpoint(
        load_checkpoint(best_path),
        best_path,
        best_path,
        run.val_loader,
        val_split_name(run.config.data),
        training_stats.pixels,
        run.device,
        run.inference,
    )
    console.print(fit.describe(run.classes.names))
    return fit


def _print_epoch(record: dict[str, Any]) -> None:
    line = (
        f"epoch {record['epoch']:>3}  loss {record['train_loss']:.4f}  "
        f"lr {record['lr']:.2e}  {record['images_per_s']:.1f} img/s"
    )
    if record.get("val_loss") is not None:
        line += f"  val loss {record['val_loss']:.4f}"
    if "val_miou" in record:
        line += f"  val mIoU {100 * record['val_miou']:.2f}"
    if record.get("skipped"):
        line += f"  skipped {record['skipped']} broken sample(s), see skipped.txt"
    console.print(line)


def _finish(
    run: TrainingRun, state: TrainState, run_dir: Path, class_bias: ClassBiasFit | None
) -> None:
    """Summary, curves, sample predictions of the best model, per-class table."""
    names = run.classes.names
    save_curves_figure(run_dir / "curves.png", state.history)
    best_path = run_dir / "best.pt"
    model = model_from_checkpoint(load_checkpoint(best_path), best_path).to(run.device).eval()
    indices = spread_indices(run.config.train.sample_images, len(run.val_set))
    rows = sample_predictions(model, run.val_set, indices, run.inference, run.device)
    sample_names = [run.val_set.sample_name(index) for index in indices]
    save_samples_figure(run_dir / "samples.png", rows, run.classes, sample_names)
    summary = _summary(run, state, "completed")
    if class_bias is not None:
        summary["class_bias"] = class_bias.record(names)
    write_json(run_dir / "summary.json", summary)
    title = f"validation, best.pt (epoch {state.best_epoch})"
    console.print(class_table(state.best_metrics, names, title))
    console.print(summary_line(state.best_metrics))
    console.print(f"run folder: {run_dir}  (best.pt, last.pt, curves.png, samples.png)")


def spread_indices(count: int, total: int) -> list[int]:
    """`count` indices spread evenly over `total` samples, the middle of each of `count`
    equal parts: a video split (CamVid) shows frames of different scenes, not the first
    few near-identical ones."""
    count = min(count, total)
    return [(2 * part + 1) * total // (2 * count) for part in range(count)]


def _summary(run: TrainingRun, state: TrainState, status: str) -> dict[str, Any]:
    return {
        "status": status,
        "best_epoch": state.best_epoch,
        "epochs": state.epoch,
        "best": state.best_metrics,
        "class_names": list(run.classes.names),
        "nan_rule": NAN_RULE,
        "train_time_s": sum(record["epoch_time_s"] for record in state.history),
        "skipped_samples": len(state.skipped),
    }


def _mark_stopped(run: TrainingRun, state: TrainState, run_dir: Path, error: BaseException) -> None:
    """summary.json of a run that did not finish: how it stopped and why, so a person
    and `--resume` both know. What it wrote so far stays (last.pt is the last good one)."""
    interrupted = isinstance(error, KeyboardInterrupt)
    summary = _summary(run, state, "interrupted" if interrupted else "failed")
    summary["error"] = "interrupted" if interrupted else " ".join(str(error).split())
    summary["resume_with"] = f"--resume {run_dir / 'last.pt'}" if state.epoch else None
    # A full disk may be why it stopped: then the original error is what to report.
    with contextlib.suppress(OSError, SemsegError):
        write_json(run_dir / "summary.json", summary)


def _how_it_stopped(run_dir: Path) -> str:
    """How the run had stopped, for the resume message: its failure, or nothing."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return ""
    if summary.get("status") == "failed":
        return f" (it had failed: {summary.get('error')})"
    if summary.get("status") == "interrupted":
        return " (it had been interrupted)"
    return ""
