"""Building a training run from a config: data, network, loss, optimiser, schedule,
budget and loaders, all checked before the run folder exists, so that a bad config or
dataset leaves nothing behind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from semseg.classes import ClassSet
from semseg.config import IMAGENET_MEAN, IMAGENET_STD, Config, parse_duration, size_pair
from semseg.console import console, track
from semseg.data import SegmentationLoader, input_channels, make_loader, open_split
from semseg.data.base import SegmentationDataset
from semseg.data.registry import train_split_name, val_split_name
from semseg.data.sampling import image_class_pixels
from semseg.data.stats import ClassStats, dataset_stats
from semseg.data.transforms import eval_preset, train_preset
from semseg.engine.budget import Budget
from semseg.engine.distributed import World, join_world, sync_batch_norm
from semseg.engine.ema import ModelEMA
from semseg.engine.epoch import TrainingStep
from semseg.engine.inference import InferenceSettings
from semseg.engine.precision import (
    CPU_TRAINING_PRECISIONS,
    fastest_cpu_training_precision,
    resolve_amp,
    use_cpu_training_precision,
)
from semseg.engine.runtime import seed_everything
from semseg.engine.schedule import LRSchedule, build_optimizer
from semseg.losses import build_loss
from semseg.models import build_model
from semseg.models.encoders import freeze_encoder_stages
from semseg.models.pretrained import load_weights_file


@dataclass
class TrainingRun:
    """Everything a training loop uses, built once. `config` is the resolved one (input
    normalisation filled in); it is what the run folder and checkpoints record."""

    config: Config
    world: World  # this process's place under torchrun (one inactive process without)
    device: torch.device
    classes: ClassSet
    in_channels: int
    train_set: SegmentationDataset
    val_set: SegmentationDataset
    train_loader: SegmentationLoader
    val_loader: SegmentationLoader
    # Reseeded every epoch; the training loader's shuffling and worker seeds come from it.
    generator: torch.Generator
    step: TrainingStep
    budget: Budget | None
    # eval.* settings: the class-bias fit uses them as they are, validation one pass.
    inference: InferenceSettings
    # On the CPU: which of CPU_TRAINING_PRECISIONS the step runs in (kept by last.pt).
    cpu_precision: str | None = None

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps per epoch (fewer with more processes: each has a shard)."""
        return -(-len(self.train_loader) // self.config.train.accumulate_steps)

    @property
    def model(self) -> nn.Module:
        """The network the optimiser trains."""
        return self.step.model

    @property
    def evaluated(self) -> nn.Module:
        """The weights that are validated and saved as the run's model (best.pt, and
        last.pt's `state_dict`): the EMA average when train.ema_decay is set, else the
        trained network itself. last.pt also keeps the trained network, to resume from."""
        return self.step.ema.module if self.step.ema is not None else self.step.model


def build_run(config: Config, resumed: dict[str, Any] | None = None) -> TrainingRun:
    """A run for `config`; `resumed` (a last.pt payload) restores the time budget spent,
    and the weights come from it later rather than from `model.weights`. Under torchrun
    each process builds its own run: same weights (same seed), its shard of the data."""
    world, device = join_world(config.train.device)
    seed_everything(config.train.seed)
    skip_broken = config.data.on_error == "skip"
    train_set = open_split(config.data, train_split_name(config.data), keep_broken=skip_broken)
    val_set = open_split(config.data, val_split_name(config.data))
    classes, in_channels = train_set.classes, input_channels(config.data)
    model = _network(config, classes, in_channels, device, resumed is None)
    amp_dtype, cpu_precision = _training_precision(
        config, model, in_channels, device, world, resumed
    )
    config = with_input_normalization(config, model)
    train_set.transform = train_preset(config.data, classes.ignore_index)
    val_set.transform = eval_preset(config.data)
    shard = (world.rank, world.size) if world.active else None
    generator = torch.Generator()
    train_loader = make_loader(
        train_set,
        config.data,
        config.data.batch_size,
        True,
        generator,
        config.train.seed,
        shard,
        _shared_class_table(config, train_set, world),
    )
    budget = _budget(config, resumed, world)
    step = _training_step(
        config, model, train_set, len(train_loader), budget, device, world, amp_dtype
    )
    _announce(config, world, step)
    return TrainingRun(
        config=config,
        world=world,
        device=device,
        classes=classes,
        in_channels=in_channels,
        train_set=train_set,
        val_set=val_set,
        train_loader=train_loader,
        val_loader=make_loader(val_set, config.data, config.eval.batch_size, False, shard=shard),
        generator=generator,
        step=step,
        budget=budget,
        inference=InferenceSettings.from_config(config.eval, device, config.data.normalization()),
        cpu_precision=cpu_precision,
    )


def with_input_normalization(config: Config, model: nn.Module) -> Config:
    """`data.mean` / `data.std` as configured, else what the model's weights expect (its
    encoder's pretrained config), else ImageNet's."""
    expected = getattr(model, "normalization", None) or (IMAGENET_MEAN, IMAGENET_STD)
    data = config.data.model_copy(
        update={"mean": config.data.mean or expected[0], "std": config.data.std or expected[1]}
    )
    return config.model_copy(update={"data": data})


def build_network(config: Config, num_classes: int, in_channels: int = 3) -> nn.Module:
    """The config's model as training builds it: its builder options, frozen stages."""
    model = build_model(
        config.model.name, num_classes, in_channels, **config.model.builder_options()
    )
    if config.model.frozen_stages:
        freeze_encoder_stages(model, config.model.frozen_stages)
    return model


def _network(
    config: Config, classes: ClassSet, in_channels: int, device: torch.device, fresh: bool
) -> nn.Module:
    model = build_network(config, classes.num_classes, in_channels)
    if config.model.weights is not None and fresh:
        load_weights_file(model, config.model.weights)  # freezing left the values as built
    if config.model.sync_bn:
        model = sync_batch_norm(model, device)
    model.to(device)
    if config.train.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def _training_precision(
    config: Config,
    model: nn.Module,
    in_channels: int,
    device: torch.device,
    world: World,
    resumed: dict[str, Any] | None,
) -> tuple[torch.dtype | None, str | None]:
    """The training step's autocast dtype and, on the CPU, which of
    CPU_TRAINING_PRECISIONS it is (the model's convolutions set up for it). With
    train.amp=auto on a CPU with bf16 units it is timed on a batch of the configured
    size, once: a resumed run continues in the precision it began in, and under torchrun
    rank 0 decides for all."""
    dtype = resolve_amp(config.train.amp, device)
    if device.type != "cpu":
        return dtype, None
    default = next(iter(CPU_TRAINING_PRECISIONS))
    if dtype is None:
        name = "fp32"
    elif config.train.amp != "auto" or config.train.deterministic:
        name = default  # explicit bf16; deterministic runs must not depend on a timing
    elif resumed and resumed.get("cpu_precision") in CPU_TRAINING_PRECISIONS:
        name = resumed["cpu_precision"]
    else:
        name = world.main_computes(lambda: _timed_cpu_precision(config, model, in_channels))
    return use_cpu_training_precision(model, name), name


def _timed_cpu_precision(config: Config, model: nn.Module, in_channels: int) -> str:
    images = torch.randn(config.data.batch_size, in_channels, *size_pair(config.data.crop_size))
    name, timings = fastest_cpu_training_precision(model, images)
    if len(timings) > 1:
        timed = ", ".join(f"{key} {seconds:.2f}" for key, seconds in timings.items())
        console.print(f"CPU training precision: {name} (seconds per batch: {timed})")
    return name


def _budget(config: Config, resumed: dict[str, Any] | None, world: World) -> Budget | None:
    if not config.train.time_budget:
        return None
    spent = resumed.get("budget_spent_s", 0.0) if resumed else 0.0
    # Under torchrun every rank reads the slowest rank's clock, so all ranks stop at the
    # same step and schedule the same learning rate.
    return Budget(parse_duration(config.train.time_budget), spent_before=spent, agree=world.max)


def _shared_class_table(
    config: Config, train_set: SegmentationDataset, world: World
) -> np.ndarray | None:
    """data.sampler=rare_class under torchrun: the per-image class pixels, counted once on
    rank 0 and shared (alone, make_loader counts them itself)."""
    if config.data.sampler != "rare_class" or not world.active:
        return None
    skip = config.data.on_error == "skip"
    return world.main_computes(
        lambda: image_class_pixels(
            train_set, lambda items: track(items, "image class statistics"), skip
        )
    )


def _announce(config: Config, world: World, step: TrainingStep) -> None:
    """Under torchrun: the world size, the batch per device and in all, the rate in use."""
    if not world.active:
        return
    per_device = config.data.batch_size
    global_batch = per_device * world.size * config.train.accumulate_steps
    console.print(
        f"torchrun: {world.size} process(es), batch {per_device} per device, global batch "
        f"{global_batch}; learning rate {step.schedule.optim.lr:.3g} (optim.lr_scaling="
        f"{config.optim.lr_scaling})"
    )


def _training_step(
    config: Config,
    model: nn.Module,
    train_set: SegmentationDataset,
    batches_per_epoch: int,
    budget: Budget | None,
    device: torch.device,
    world: World,
    amp_dtype: torch.dtype | None,
) -> TrainingStep:
    stats = world.main_computes(lambda: _loss_statistics(config, train_set))
    loss_fn = build_loss(
        config.loss,
        train_set.classes,
        _auto_class_weights(config, stats),
        class_pixels=stats.pixels if stats else None,
    )
    optim = _scaled_optim(config, world)
    optimizer = build_optimizer(model, optim)
    steps_per_epoch = -(-batches_per_epoch // config.train.accumulate_steps)
    schedule = LRSchedule(
        optimizer,
        optim,
        total_steps=steps_per_epoch * config.train.epochs,
        warmup_steps=round(config.optim.warmup_epochs * steps_per_epoch),
        progress=budget.progress if budget else None,
    )
    return TrainingStep(
        model,
        loss_fn.to(device),
        optimizer,
        schedule,
        device,
        amp_dtype=amp_dtype,
        grad_clip=config.optim.grad_clip,
        accumulate_steps=config.train.accumulate_steps,
        aux_weight=config.loss.aux_weight,
        ema=ModelEMA(model, config.train.ema_decay) if config.train.ema_decay else None,
        compile=config.train.compile,
        world=world,
    )


def _scaled_optim(config: Config, world: World):
    """optim.lr_scaling=linear: the learning rate times the number of processes (the
    global batch over one process's batch); the config keeps the rate as written."""
    if config.optim.lr_scaling == "none" or not world.active:
        return config.optim
    return config.optim.model_copy(update={"lr": config.optim.lr * world.size})


def _loss_statistics(config: Config, train_set: SegmentationDataset) -> ClassStats | None:
    """The training split's class statistics, when the loss needs them
    (`loss.class_weights=auto`, `loss.logit_adjustment`): counted once, then cached."""
    if config.loss.class_weights != "auto" and not config.loss.logit_adjustment:
        return None
    return dataset_stats(
        train_set,
        lambda items: track(items, "class statistics"),
        skip_broken=config.data.on_error == "skip",
    )


def _auto_class_weights(config: Config, stats: ClassStats | None) -> list[float] | None:
    """`class_weights=auto`: the weights of the configured rule, printed."""
    if config.loss.class_weights != "auto" or stats is None:
        return None
    weights = stats.weights(config.loss.class_weighting)
    shown = ", ".join(f"{name} {w:.3f}" for name, w in zip(stats.class_names, weights, strict=True))
    console.print(f"class weights ({config.loss.class_weighting}): {shown}")
    return weights
