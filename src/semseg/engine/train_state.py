"""What a training run saves and restores: the loop's own state (epoch, best so far,
history) and the checkpoint payloads of best.pt and last.pt."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from semseg.engine.checkpoint import model_record
from semseg.engine.setup import TrainingRun


@dataclass
class TrainState:
    """What a resumed run needs beyond model, optimiser and schedule."""

    epoch: int = 0  # epochs completed
    best_epoch: int = 0
    best_miou: float = -math.inf
    best_metrics: dict[str, Any] | None = None
    last_metrics: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per epoch
    # Training files skipped as broken (data.on_error=skip): path -> what was wrong.
    skipped: dict[str, str] = field(default_factory=dict)
    budget_spent_s: float = 0.0  # of train.time_budget, as agreed at the last epoch end

    def improved_by(self, metrics: dict[str, Any]) -> bool:
        """Whether validation `metrics` beat the best so far (the first always does)."""
        return metrics["miou"] > self.best_miou or self.best_epoch == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_epoch": self.best_epoch,
            "best_miou": self.best_miou,
            "best_metrics": self.best_metrics,
            "history": self.history,
            "skipped": self.skipped,
        }

    @classmethod
    def from_checkpoint(cls, payload: dict[str, Any]) -> TrainState:
        return cls(
            epoch=payload["epoch"],
            best_epoch=payload["best_epoch"],
            best_miou=payload["best_miou"],
            best_metrics=payload["best_metrics"],
            last_metrics=payload["metrics"],
            history=list(payload["history"]),
            skipped=dict(payload.get("skipped", {})),
            budget_spent_s=payload.get("budget_spent_s", 0.0),
        )


def model_checkpoint(run: TrainingRun, epoch: int, metrics: dict[str, Any] | None) -> dict:
    """best.pt: the evaluated weights with everything `eval` and `predict` need."""
    return {
        "model": model_record(run.config, run.classes.num_classes, run.in_channels),
        "state_dict": run.evaluated.state_dict(),
        "classes": run.classes.to_dict(),
        "config": run.config.to_plain(),
        "epoch": epoch,
        "metrics": metrics,
    }


def training_checkpoint(run: TrainingRun, state: TrainState) -> dict:
    """last.pt: the model checkpoint plus what resuming needs (optimiser, schedule, loss
    scaler, budget spent, the loop's state and, with EMA, the trained network)."""
    step = run.step
    payload = model_checkpoint(run, state.epoch, state.last_metrics) | {
        "optimizer": step.optimizer.state_dict(),
        "schedule": step.schedule.state_dict(),
        "scaler": step.scaler.state_dict(),
        "budget_spent_s": state.budget_spent_s,
        "world_size": run.world.size,
        "cpu_precision": run.cpu_precision,
        **state.to_dict(),
    }
    if step.ema is not None:
        payload["train_state_dict"] = run.model.state_dict()
    return payload


def restore(run: TrainingRun, payload: dict[str, Any]) -> TrainState:
    """Put a last.pt payload back into `run`; returns the loop's state."""
    # The trained network first. Without EMA `run.evaluated` is the same module and
    # simply loads the same weights again; with EMA it is the average, saved apart.
    run.model.load_state_dict(payload.get("train_state_dict", payload["state_dict"]))
    run.evaluated.load_state_dict(payload["state_dict"])
    state = TrainState.from_checkpoint(payload)
    run.step.optimizer.load_state_dict(payload["optimizer"])
    schedule = payload["schedule"]
    if payload.get("world_size", 1) != run.world.size:
        # Resumed with another number of processes: epochs hold another number of
        # steps, so the schedule continues from this world's step count at that epoch.
        schedule = schedule | {"step_count": state.epoch * run.steps_per_epoch}
    run.step.schedule.load_state_dict(schedule)
    run.step.scaler.load_state_dict(payload["scaler"])
    run.train_loader.broken_files.update(state.skipped)  # data.max_skipped counts the run
    return state
