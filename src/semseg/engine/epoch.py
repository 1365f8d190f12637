"""Training: one step (forward under autocast, loss, backward, and every few batches the
optimiser, schedule and EMA updates) and `train_one_epoch`, the loop over a loader.

Losses are summed on the device and read back only every few steps, so the loop never
waits on the device for logging."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from semseg.console import progress_bar
from semseg.engine.distributed import World, data_parallel
from semseg.engine.ema import ModelEMA
from semseg.engine.precision import autocast, to_model_layout
from semseg.engine.schedule import LRSchedule
from semseg.errors import SemsegError

LOG_EVERY = 10  # steps between progress-bar updates (each one reads values back)


class TrainingForward(nn.Module):
    """A model's training path as a module of its own, returning (logits, auxiliary
    logits or None). torch.compile wraps this rather than the model, so the model's own
    `forward` stays the one that returns logits, for evaluation and export."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        # A registered model need not subclass SegmentationModel; one without the training
        # path has no auxiliary head.
        with_aux = getattr(self.model, "forward_with_aux", None)
        return with_aux(images) if with_aux is not None else (self.model(images), None)


@dataclass
class TrainingStep:
    """What one batch of training does to `model`. `ema`, when set, averages the model's
    weights after every optimiser step (see ModelEMA). Under torchrun (`world` active)
    the forward pass is DistributedDataParallel's, so backward averages the gradients
    over the processes; `model` stays the plain network (checkpoints have no `module.`)."""

    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    device: torch.device
    amp_dtype: torch.dtype | None = None
    grad_clip: float | None = None
    accumulate_steps: int = 1
    aux_weight: float = 0.0
    ema: ModelEMA | None = None
    compile: bool = False
    world: World = field(default_factory=World)
    scaler: torch.amp.GradScaler = field(init=False)
    forward: nn.Module = field(init=False)
    _unsynced: bool = field(init=False, default=False)  # gradients not yet all-reduced

    def __post_init__(self) -> None:
        self.forward = data_parallel(TrainingForward(self.model), self.world, self.device)
        if self.compile:
            self.forward = torch.compile(self.forward)
        # Loss scaling is needed for fp16 only; bf16 has fp32's exponent range.
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16
        )

    def backward(
        self, images: torch.Tensor, masks: torch.Tensor, sync: bool = True
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forward and backward of one batch (gradients accumulate); returns the loss
        and its detached terms. `sync=False` (a batch that only accumulates) skips the
        all-reduce of the gradients under torchrun: the stepping batch does it for all."""
        images = to_model_layout(self.model, images.to(self.device, non_blocking=True))
        masks = masks.to(self.device, non_blocking=True)
        no_sync = getattr(self.forward, "no_sync", None)
        with no_sync() if no_sync is not None and not sync else contextlib.nullcontext():
            with autocast(self.device, self.amp_dtype):
                logits, aux_logits = self.forward(images)
            loss, terms = self._loss(logits, aux_logits, masks)
            self.scaler.scale(loss / self.accumulate_steps).backward()
        self._unsynced = no_sync is not None and not sync
        return loss, terms

    def optimizer_step(self) -> None:
        if self._unsynced:  # a group cut short by the budget: average its gradients here
            self.world.average_gradients(self.model)
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()
        if self.ema is not None:
            self.ema.update(self.model, self.schedule.step_count)

    def _loss(
        self, logits: torch.Tensor, aux_logits: torch.Tensor | None, masks: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Main loss (+ aux_weight x the auxiliary head's loss) and its detached terms."""
        loss = self.loss_fn(logits, masks)
        terms = {"loss": loss.detach()}
        if len(getattr(self.loss_fn, "last_terms", {})) > 1:
            terms |= self.loss_fn.last_terms
        if aux_logits is not None:
            aux = self.loss_fn(aux_logits, masks)
            loss = loss + self.aux_weight * aux
            terms |= {"loss": loss.detach(), "aux": aux.detach()}
        return loss, terms


def train_one_epoch(
    step: TrainingStep,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    description: str,
    last_good: str,
    stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """One pass over `loader` (cut short when `stop()` turns true, e.g. a spent time
    budget); returns the mean loss and its terms, images/s and seconds. `last_good`
    names the checkpoint a non-finite loss leaves intact, for the error message."""
    step.model.train()
    totals: dict[str, torch.Tensor] = {}
    first_bad = torch.full((), -1, dtype=torch.long, device=step.device)
    images_seen = done = 0
    batches = len(loader)
    start = time.perf_counter()
    with progress_bar() as progress:
        task = progress.add_task(description, total=batches, info="")
        for index, (images, masks) in enumerate(loader):
            # At least one batch per epoch: a budget that ran out during the previous
            # validation still ends with a trained, validated final epoch.
            if stop is not None and index > 0 and stop():
                break
            # The group's last batch all-reduces the gradients under torchrun.
            group_end = (index + 1) % step.accumulate_steps == 0 or index + 1 == batches
            loss, terms = step.backward(images, masks, sync=group_end)
            first_bad = torch.where(
                (first_bad < 0) & ~torch.isfinite(loss.detach()), index, first_bad
            )
            # The last batch of an epoch (or of a spent budget) steps with what it has.
            if group_end or (stop is not None and stop()):
                step.optimizer_step()
            for name, value in terms.items():
                totals[name] = totals.get(name, 0) + value
            images_seen += images.shape[0]
            done = index + 1
            if index % LOG_EVERY == 0:
                _stop_if_non_finite(first_bad, step.world, description, last_good)
                if progress.live.is_started:
                    rate = images_seen / (time.perf_counter() - start)
                    mean = totals["loss"].item() / done
                    progress.update(task, info=f"loss {mean:.4f}  {rate:.1f} img/s")
            progress.advance(task)
    _stop_if_non_finite(first_bad, step.world, description, last_good)
    elapsed = time.perf_counter() - start
    means = {name: value.item() / max(1, done) for name, value in totals.items()}
    result = {"train_loss": means.pop("loss")}
    result |= {f"train_{name}": value for name, value in means.items()}
    return result | {"images_per_s": images_seen / elapsed, "epoch_time_s": elapsed}


def _stop_if_non_finite(
    first_bad: torch.Tensor, world: World, description: str, last_good: str
) -> None:
    """Raise (on every rank at once under torchrun) when a loss so far was not finite."""
    bad_step = int(world.max(first_bad.item()))
    if bad_step >= 0:
        where = f" on one of {world.size} processes" if world.active else ""
        raise SemsegError(
            f"training loss became non-finite at step {bad_step + 1} of {description}{where}; "
            f"stopped, {last_good} is intact; lower optim.lr, set optim.grad_clip or "
            "train.amp=off"
        )
