"""Training-step options: loss terms in the log, accumulation, EMA, mixed precision,
non-finite losses, TensorBoard."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import semseg
from semseg.config import Config
from semseg.engine import precision, setup
from semseg.engine.checkpoint import load_checkpoint
from semseg.engine.ema import ModelEMA
from semseg.engine.precision import (
    CPU_TRAINING_PRECISIONS,
    cpu_autocast_exceptions,
    fastest_cpu_training_precision,
    resolve_amp,
)
from semseg.engine.runtime import deterministic_mode
from semseg.errors import SemsegError
from semseg.models import build_model


def _history(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]


def _configured(config: Config, **changes) -> Config:
    config = config.model_copy(deep=True)
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        setattr(getattr(config, section), key, value)
    return config


def test_combined_loss_terms_and_lr_are_logged(tiny_config: Config) -> None:
    config = semseg.load_config(
        None, ["loss=[{name: ce}, {name: dice, weight: 0.5}]"], base=tiny_config.to_plain()
    )
    history = _history(semseg.train(config).run_dir)
    first = history[0]
    assert {"train_cross_entropy", "train_dice", "lr", "images_per_s"} <= set(first)
    assert first["train_loss"] == pytest.approx(
        first["train_cross_entropy"] + 0.5 * first["train_dice"], rel=1e-4
    )


def test_gradient_accumulation_makes_fewer_optimiser_steps(tiny_config: Config) -> None:
    # 16 images, batch 4: 4 batches per epoch; accumulating 2 -> 2 optimiser steps.
    config = _configured(tiny_config, train__accumulate_steps=2, train__epochs=1)
    last = load_checkpoint(semseg.train(config).run_dir / "last.pt")
    assert last["schedule"]["step_count"] == 2


def test_ema_decay_ramps_up_so_short_runs_forget_the_initial_weights() -> None:
    model = torch.nn.Linear(2, 2)
    ema = ModelEMA(model, decay=0.999)
    assert ema.decay_at(1) == pytest.approx(2 / 11) and ema.decay_at(10**6) == 0.999
    with torch.no_grad():
        model.weight.fill_(1.0)
    for step in range(1, 371):  # a 10-minute CamVid run's optimiser steps
        ema.update(model, step)
    assert torch.allclose(ema.module.weight, torch.ones(2, 2), atol=0.05)


def test_ema_weights_are_evaluated_saved_and_resumed(tiny_config: Config) -> None:
    config = _configured(tiny_config, train__ema_decay=0.5, train__epochs=1, train__name="ema")
    run_dir = semseg.train(config).run_dir
    last = load_checkpoint(run_dir / "last.pt")
    assert set(last["state_dict"]) == set(last["train_state_dict"])
    assert any(
        not torch.equal(last["state_dict"][k], last["train_state_dict"][k])
        for k in last["state_dict"]
        if last["state_dict"][k].is_floating_point()
    )
    config.train.epochs = 2
    resumed = semseg.train(config, resume=run_dir / "last.pt")
    assert [r["epoch"] for r in _history(resumed.run_dir)] == [1, 2]


def test_non_finite_loss_stops_naming_the_step_and_keeps_last_pt(
    tiny_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semseg import losses

    real = losses.cross_entropy
    calls = {"count": 0}

    def nan_in_epoch_two(logits, target, **kwargs):
        calls["count"] += 1
        value = real(logits, target, **kwargs)
        return value * float("nan") if calls["count"] == 4 + 3 else value

    entry = losses.LOSSES.get("cross_entropy")
    monkeypatch.setitem(
        losses.LOSSES._entries, "cross_entropy", replace(entry, function=nan_in_epoch_two)
    )
    config = _configured(tiny_config, train__name="nan", train__val_every=5)
    with pytest.raises(SemsegError, match=r"non-finite at step 3 of epoch 2/2") as info:
        semseg.train(config)
    assert "last.pt (epoch 1) is intact" in str(info.value)
    last = load_checkpoint(config.train.output_dir / "nan" / "last.pt")
    assert last["epoch"] == 1
    assert all(
        torch.isfinite(t).all() for t in last["state_dict"].values() if t.is_floating_point()
    )


def test_amp_settings_resolve_per_device() -> None:
    cpu = torch.device("cpu")
    assert resolve_amp("off", cpu) is None
    assert resolve_amp("bf16", cpu) is torch.bfloat16
    assert resolve_amp("auto", cpu) in (None, torch.bfloat16)
    with pytest.raises(SemsegError, match="fp16 needs CUDA"):
        resolve_amp("fp16", cpu)


def test_depthwise_convolutions_leave_cpu_autocast_and_nothing_else_changes() -> None:
    torch.manual_seed(0)
    model = build_model("unet", num_classes=3, encoder="efficientnet_lite0").eval()
    keys = list(model.state_dict())
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        reference = model(images)
    depthwise = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert cpu_autocast_exceptions(model) == len(depthwise) > 0
    assert list(model.state_dict()) == keys
    with torch.no_grad():
        assert torch.equal(model(images), reference)  # without autocast: the same module
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs = depthwise[0](torch.randn(1, depthwise[0].in_channels, 8, 8))
            dense = model.head(torch.randn(1, model.head.in_channels, 8, 8))
    assert outputs.dtype == torch.float32 and dense.dtype == torch.bfloat16


def test_dilated_convolutions_off_the_channel_blocking_leave_cpu_autocast() -> None:
    """oneDNN's bf16 weight gradient of a dilated conv on channels_last inputs is wrong
    for channel counts off its blocking (ESPNet's 25): those run in fp32, the rest not."""
    model = build_model("espnet", num_classes=11)
    convs = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    cpu_autocast_exceptions(model)
    swapped = {name for name, m in convs.items() if type(m) is not torch.nn.Conv2d}
    fragile = {
        name
        for name, m in convs.items()
        if m.dilation[0] > 1 and (m.in_channels % 32 or m.out_channels % 32)
    }
    assert swapped == fragile and len(fragile) > 10
    deeplab = build_model("deeplabv3", num_classes=3, encoder="resnet10t")
    assert cpu_autocast_exceptions(deeplab) == 0  # 64-512 channels stay in bf16
    conv = convs["down3.branches.4"].to(memory_format=torch.channels_last)
    images = torch.randn(2, conv.in_channels, 24, 24).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        conv(images).square().mean().backward()
    assert torch.isfinite(conv.weight.grad).all()


def test_cpu_training_precision_is_timed_and_leaves_the_model_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(precision, "MIN_TIMED_SECONDS", 0.0)  # time even a tiny model
    torch.manual_seed(0)
    model = build_model("unet", num_classes=3, encoder="efficientnet_lite0")
    before = {key: value.clone() for key, value in model.state_dict().items()}
    images = torch.randn(2, 3, 64, 64)
    rng = torch.get_rng_state()
    choice, timings = fastest_cpu_training_precision(model, images)
    assert set(timings) == set(CPU_TRAINING_PRECISIONS) and choice in timings
    assert all(seconds > 0 for seconds in timings.values())
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)  # BN statistics too
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)
    depthwise = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    in_fp32 = {type(m) is not torch.nn.Conv2d for m in depthwise}
    assert in_fp32 == {CPU_TRAINING_PRECISIONS[choice][1]}


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        ({"bf16, depthwise fp32": 1.0, "bf16": 0.95, "fp32": 0.5}, "fp32"),
        ({"bf16, depthwise fp32": 1.0, "bf16": 0.8, "fp32": 1.5}, "bf16"),
        # Within the timing noise of a shared host: the default stays.
        ({"bf16, depthwise fp32": 1.0, "bf16": 0.95, "fp32": 0.93}, "bf16, depthwise fp32"),
        # Too short a pass to be worth timing the others.
        ({"bf16, depthwise fp32": 0.01, "bf16": 0.001, "fp32": 0.001}, "bf16, depthwise fp32"),
    ],
)
def test_cpu_training_precision_switches_only_for_a_clear_gain(
    monkeypatch: pytest.MonkeyPatch, seconds: dict[str, float], expected: str
) -> None:
    timed = []

    def fake_pass(model, images, name, repeats):
        timed.append(name)
        return seconds[name]

    monkeypatch.setattr(precision, "_seconds_per_training_pass", fake_pass)
    model = build_model("unet", num_classes=3, encoder="efficientnet_lite0")
    choice, timings = fastest_cpu_training_precision(model, torch.randn(1, 3, 32, 32))
    assert choice == expected
    assert timed == list(timings) == list(CPU_TRAINING_PRECISIONS)[: len(timed)]
    assert len(timed) == (1 if seconds["bf16, depthwise fp32"] < precision.MIN_TIMED_SECONDS else 3)


def test_a_run_times_its_cpu_precision_once_and_keeps_it_on_resume(
    tiny_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    calls = []

    def fake_choice(model, images):
        calls.append(tuple(images.shape))
        return "fp32", {"fp32": 0.1}

    monkeypatch.setattr(setup, "fastest_cpu_training_precision", fake_choice)
    run = setup.build_run(tiny_config)
    assert run.cpu_precision == "fp32" and run.step.amp_dtype is None
    assert calls == [(4, 3, 32, 32)]  # data.batch_size x channels x data.crop_size
    resumed = setup.build_run(tiny_config, {"cpu_precision": "bf16"})
    assert resumed.cpu_precision == "bf16" and resumed.step.amp_dtype is torch.bfloat16
    explicit = setup.build_run(_configured(tiny_config, train__amp="bf16"))
    assert explicit.cpu_precision == "bf16, depthwise fp32"
    assert len(calls) == 1
    config = _configured(tiny_config, train__epochs=1, train__name="timed")
    semseg.train(config)
    last = load_checkpoint(config.train.output_dir / "timed" / "last.pt")
    assert last["cpu_precision"] == "fp32"


def test_deterministic_mode_warns_instead_of_failing_and_restores_settings() -> None:
    before = torch.are_deterministic_algorithms_enabled()
    with deterministic_mode(True):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.are_deterministic_algorithms_enabled() is before
    assert not torch.is_deterministic_algorithms_warn_only_enabled()


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_training_runs_in_each_precision_and_layout(tiny_config: Config, amp: str) -> None:
    for channels_last in (False, True):
        config = _configured(
            tiny_config,
            train__amp=amp,
            train__channels_last=channels_last,
            train__epochs=1,
            train__name=f"{amp}-{channels_last}",
        )
        result = semseg.train(config)
        assert _history(result.run_dir)[0]["train_loss"] > 0


def test_tensorboard_log(tiny_config: Config) -> None:
    pytest.importorskip("tensorboard")
    config = _configured(tiny_config, train__tensorboard=True, train__epochs=1)
    run_dir = semseg.train(config).run_dir
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_torch_compile_trains(tiny_config: Config) -> None:
    config = _configured(tiny_config, train__compile=True, train__epochs=1)
    assert _history(semseg.train(config).run_dir)[0]["train_loss"] > 0


def test_time_budget_stops_training_and_lays_the_schedule_over_it(tiny_config: Config) -> None:
    import time

    config = _configured(
        tiny_config, train__time_budget="3s", train__epochs=10_000, train__name="budget"
    )
    start = time.monotonic()
    result = semseg.train(config)
    assert time.monotonic() - start < 60
    history = _history(result.run_dir)
    last = load_checkpoint(result.run_dir / "last.pt")
    assert 1 <= len(history) < 10_000 and last["budget_spent_s"] >= 3
    assert "val_miou" in history[-1]  # the final weights were evaluated
    lrs = [record["lr"] for record in history]
    if len(lrs) > 1:  # a slow machine may spend the 3 s in one epoch
        assert lrs[-1] < max(lrs)  # poly decay over the budget


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("1h30m", 5400), ("90s", 90), ("2h", 7200), ("45", 45)]
)
def test_durations(text: str, seconds: float) -> None:
    from semseg.config import parse_duration

    assert parse_duration(text) == seconds


@given(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99))
def test_any_hours_minutes_seconds_add_up(hours: int, minutes: int, seconds: int) -> None:
    from semseg.config import parse_duration

    text = "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n)
    total = 3600 * hours + 60 * minutes + seconds
    if total:
        assert parse_duration(text or "0s") == total
    else:
        with pytest.raises(SemsegError, match="more than 0 seconds"):
            parse_duration("0s")


def test_bad_duration_is_a_config_error() -> None:
    with pytest.raises(SemsegError, match="'train.time_budget'.*write e.g. 30m"):
        semseg.load_config(None, ["train.time_budget=soon"])


def test_an_epoch_starting_after_the_budget_still_trains_one_batch() -> None:
    from semseg.classes import ClassSet
    from semseg.config import LossConfig, OptimConfig
    from semseg.engine.epoch import TrainingStep, train_one_epoch
    from semseg.engine.schedule import LRSchedule, build_optimizer
    from semseg.losses import build_loss
    from semseg.models import build_model

    model = build_model("unet_small", 3, base_width=4)
    optimizer = build_optimizer(model, OptimConfig())
    step = TrainingStep(
        model,
        build_loss(LossConfig(), ClassSet(("a", "b", "c"))),
        optimizer,
        LRSchedule(optimizer, OptimConfig(), 10, 0),
        torch.device("cpu"),
    )
    batches = [(torch.randn(2, 3, 32, 32), torch.randint(0, 3, (2, 32, 32)))] * 3
    record = train_one_epoch(step, batches, "late", "", stop=lambda: True)
    assert record["train_loss"] > 0 and step.schedule.step_count == 1


def test_validation_runs_one_pass_and_the_class_bias_fit_uses_the_tta(
    tiny_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """eval.flip/eval.scales: checkpoints are ranked on one pass (TTA at every validation
    would cost 2-6x), the class bias is fitted with the TTA the checkpoint is used with."""
    from semseg.engine import calibrate, inference, train

    validation, calibration = set(), set()

    def validate(*args, settings, **kwargs):
        validation.add(settings.augmented)
        return evaluate_model(*args, settings=settings, **kwargs)

    def predict_for_the_fit(model, images, settings):
        calibration.add(settings.augmented)
        return inference.predict_logits(model, images, settings)

    evaluate_model = train.evaluate_model
    monkeypatch.setattr(train, "evaluate_model", validate)
    monkeypatch.setattr(calibrate, "predict_logits", predict_for_the_fit)
    config = _configured(
        tiny_config, eval__flip=True, eval__scales=[1.0, 1.5], train__fit_class_bias=True
    )
    history = _history(semseg.train(config).run_dir)
    assert validation == {False} and calibration == {True}
    assert all(record["val_loss"] is not None for record in history)


def test_encoder_lr_scale_gives_the_encoder_its_share_of_the_scheduled_rate() -> None:
    from semseg.config import OptimConfig
    from semseg.engine.schedule import LRSchedule, build_optimizer
    from semseg.models import build_model
    from semseg.models.encoders import freeze_encoder_stages

    model = build_model("unet", 3, encoder="tv_resnet18", decoder_widths=[16, 8])
    freeze_encoder_stages(model, 1)
    optim = OptimConfig(lr=0.01, encoder_lr_scale=0.1, schedule="poly")
    optimizer = build_optimizer(model, optim)
    schedule = LRSchedule(optimizer, optim, total_steps=10, warmup_steps=0)
    for _ in range(3):
        schedule.step()
    rate_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    encoder = {id(p) for p in model.encoder.parameters()}
    assert schedule.lr == pytest.approx(0.01 * 0.7**0.9)
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:  # the frozen stem: not optimised at all
            assert id(parameter) not in rate_of, name
        elif id(parameter) in encoder:
            assert rate_of[id(parameter)] == pytest.approx(0.1 * schedule.lr), name
        else:
            assert rate_of[id(parameter)] == pytest.approx(schedule.lr), name
    assert encoder & rate_of.keys() and rate_of.keys() - encoder  # both kinds are optimised


def test_encoder_lr_scale_on_a_model_without_encoder_names_the_key() -> None:
    from semseg.config import OptimConfig
    from semseg.engine.schedule import build_optimizer
    from semseg.models import build_model

    model = build_model("unet_small", 3, base_width=4)
    with pytest.raises(SemsegError, match="'optim.encoder_lr_scale'.*remove the key"):
        build_optimizer(model, OptimConfig(encoder_lr_scale=0.1))
