"""One training epoch: forward under autocast, loss, (accumulated) backward, optimiser
and schedule steps, EMA update. Losses are summed on the device and read back only every
few steps, so the loop never waits on the device for logging."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from semseg.console import progress_bar
from semseg.engine.ema import ModelEMA
from semseg.engine.precision import autocast, to_model_layout
from semseg.engine.schedule import LRSchedule
from semseg.errors import SemsegError

LOG_EVERY = 10  # steps between progress-bar updates (each one reads values back)


@dataclass
class TrainStep:
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
    forward: Any = None  # the (possibly torch.compile'd) model call; default: model
    scaler: torch.amp.GradScaler = field(init=False)

    def __post_init__(self) -> None:
        if self.forward is None:
            self.forward = self.model
        # Loss scaling is needed for fp16 only; bf16 has fp32's exponent range.
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16
        )

    def run_epoch(
        self,
        loader: DataLoader,
        description: str,
        last_good: str,
        stop: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """One pass over `loader` (cut short when `stop()` turns true, e.g. a spent time
        budget); returns the mean loss and its terms, throughput and time."""
        self.model.train()
        totals: dict[str, torch.Tensor] = {}
        first_bad = torch.full((), -1, dtype=torch.long, device=self.device)
        images_seen = 0
        start = time.perf_counter()
        batches = len(loader)
        done = 0
        with progress_bar() as progress:
            task = progress.add_task(description, total=batches, info="")
            for step, (images, masks) in enumerate(loader):
                # At least one batch per epoch: a budget that ran out during the previous
                # validation still ends with a trained, validated final epoch.
                if stop is not None and step > 0 and stop():
                    break
                images = to_model_layout(self.model, images.to(self.device, non_blocking=True))
                masks = masks.to(self.device, non_blocking=True)
                with autocast(self.device, self.amp_dtype):
                    outputs = self.forward(images)
                loss, terms = self._loss(outputs, masks)
                first_bad = torch.where(
                    (first_bad < 0) & ~torch.isfinite(loss.detach()), step, first_bad
                )
                self.scaler.scale(loss / self.accumulate_steps).backward()
                if (
                    (step + 1) % self.accumulate_steps == 0
                    or step + 1 == batches
                    or (stop is not None and stop())
                ):
                    self._optimizer_step()
                for name, value in terms.items():
                    totals[name] = totals.get(name, 0) + value
                images_seen += images.shape[0]
                done = step + 1
                if step % LOG_EVERY == 0:
                    self._stop_if_non_finite(first_bad, description, last_good)
                    if progress.live.is_started:
                        rate = images_seen / (time.perf_counter() - start)
                        mean = totals["loss"].item() / (step + 1)
                        progress.update(task, info=f"loss {mean:.4f}  {rate:.1f} img/s")
                progress.advance(task)
        self._stop_if_non_finite(first_bad, description, last_good)
        elapsed = time.perf_counter() - start
        means = {name: value.item() / max(1, done) for name, value in totals.items()}
        result = {"train_loss": means.pop("loss")}
        result |= {f"train_{name}": value for name, value in means.items()}
        return result | {"images_per_s": images_seen / elapsed, "epoch_time_s": elapsed}

    def _loss(self, outputs, masks) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Main loss (+ aux_weight x auxiliary head loss) and its detached terms."""
        main = outputs["out"] if isinstance(outputs, dict) else outputs
        loss = self.loss_fn(main, masks)
        terms = {"loss": loss.detach()}
        if len(getattr(self.loss_fn, "last_terms", {})) > 1:
            terms |= self.loss_fn.last_terms
        if isinstance(outputs, dict) and "aux" in outputs:
            aux = self.loss_fn(outputs["aux"], masks)
            loss = loss + self.aux_weight * aux
            terms |= {"loss": loss.detach(), "aux": aux.detach()}
        return loss, terms

    def _optimizer_step(self) -> None:
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()
        if self.ema is not None:
            self.ema.update(self.model, self.schedule.step_count)

    @staticmethod
    def _stop_if_non_finite(first_bad: torch.Tensor, description: str, last_good: str) -> None:
        bad_step = int(first_bad.item())
        if bad_step >= 0:
            raise SemsegError(
                f"training loss became non-finite at step {bad_step + 1} of {description}; "
                f"stopped, {last_good} is intact; lower optim.lr, set optim.grad_clip or "
                "train.amp=off"
            )
