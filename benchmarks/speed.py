"""Speed side by side, in one run on this machine. Prints JSON.

Training: the configs/camvid.yaml encoder, crop and batch with U-Net's full decoder (the
architecture smp's Unet has), on the same in-memory batches,
    1. a plain PyTorch loop (fp32, default memory layout, `loss.item()` every step: the
       loop of the classic tutorials),
    2. segmentation_models_pytorch's Unet on the same encoder, in that plain loop,
    3. semseg's training step (TrainingStep, as `semseg train` builds it: bf16 autocast on
       CPUs with native bf16, depthwise convolutions in fp32, channels_last),
with the achieved training GFLOP/s of each next to the fp32 (and bf16) matmul GFLOP/s of
this machine, measured in the same run; and 4. the recipe itself (its stride-2 decoder and
frozen encoder stages: less work per image, so images/s only).
Inference: images/s at 360x480, batch 1, of semseg's fast models and the CamVid recipe's
model (one pass, and with the recipe's test-time augmentation), through the path
`semseg predict` uses, and of torchvision's lraspp_mobilenet_v3_large as a user runs it.

    python benchmarks/speed.py
    python benchmarks/speed.py --steps 12 --repeats 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from results import publish
from steps import plain_step, semseg_step
from torch import nn

import semseg
from semseg.engine.epoch import train_one_epoch
from semseg.engine.inference import InferenceSettings, predict_logits
from semseg.engine.precision import autocast, cpu_has_fast_bf16, resolve_amp
from semseg.engine.profile import count_flops
from semseg.models import build_model
from semseg.models.encoders import freeze_encoder_stages

REPO = Path(__file__).resolve().parents[1]
NUM_CLASSES = 11  # CamVid
IGNORE_INDEX = 11
REFERENCE_NAME = "torchvision lraspp_mobilenet_v3_large"
REFERENCE = f"{REFERENCE_NAME} (fp32, as a user runs it)"
RECIPE_ROW = "semseg TrainingStep, camvid recipe (stride-2 decoder, frozen stages)"
# The models semseg recommends where speed matters (name, builder options).
FAST_MODELS = {
    "lraspp": {},
    "lraspp + efficientnet_lite0": {"encoder": "efficientnet_lite0"},
    "segformer_b0": {},
    "unet_small": {},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "camvid.yaml")
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per row")
    parser.add_argument("--repeats", type=int, default=20, help="timed inference passes")
    args = parser.parse_args()
    config = semseg.load_config(args.config, ["model.pretrained=false"])
    batch, crop = config.data.batch_size, config.data.crop_size
    result = {
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu_has_fast_bf16": cpu_has_fast_bf16(),
        "matmul_gflops": {
            "fp32": round(matmul_gflops(torch.float32), 1),
            "bf16": round(matmul_gflops(torch.bfloat16), 1),
        },
        "training": training_comparison(config, batch, crop, args.steps),
        "inference_360x480_images_per_s": inference_comparison(config, args.repeats),
    }
    training = result["training"]
    speeds = training["images_per_s"]
    training["semseg_vs_plain_loop"] = round(
        speeds["semseg TrainingStep"] / speeds["plain loop"], 2
    )
    ceiling = result["matmul_gflops"]["fp32"]
    training["achieved_share_of_fp32_matmul"] = {
        name: round(gflops / ceiling, 2) for name, gflops in training["achieved_gflops"].items()
    }
    inference = result["inference_360x480_images_per_s"]
    reference = inference[REFERENCE]
    fastest = max((k for k in inference if k.startswith("semseg")), key=inference.get)
    result["fastest_semseg_model"] = {
        "name": fastest,
        "images_per_s": inference[fastest],
        "vs_torchvision_lraspp": round(inference[fastest] / reference, 2),
    }
    publish("speed", result)


def matmul_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """Dense square matmul throughput: the machine's practical ceiling for this dtype."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def training_comparison(config, batch: int, crop: int, steps: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, crop, crop, generator=generator)
    masks = torch.randint(0, NUM_CLASSES + 1, (batch, crop, crop), generator=generator)
    batches = [(images, masks)] * steps
    rows = {
        "plain loop": (lambda: _full_decoder_unet(config), plain_loop),
        "smp Unet, plain loop": (_smp_unet, plain_loop),
        "semseg TrainingStep": (lambda: _full_decoder_unet(config), _semseg_loop(config)),
        RECIPE_ROW: (lambda: _recipe_model(config), _semseg_loop(config)),
    }
    speeds, work, achieved = {}, {}, {}
    for name, (make_model, loop) in rows.items():
        torch.manual_seed(0)
        model = make_model()
        if name != RECIPE_ROW:  # 3x the forward does not hold with frozen stages
            work[name] = round(training_flops_per_image(model, crop) / 1e9, 1)
        run = loop(model)
        run(batches[:2])  # warm-up: allocator, oneDNN primitive caches
        start = time.perf_counter()
        run(batches)
        speeds[name] = round(batch * steps / (time.perf_counter() - start), 2)
        if name in work:
            achieved[name] = round(work[name] * speeds[name], 1)
    return {
        "model": f"{config.model.name} + {config.model.encoder}",
        "crop": crop,
        "batch": batch,
        "steps": steps,
        "images_per_s": speeds,
        "training_gflop_per_image": work,
        "achieved_gflops": achieved,
    }


def _recipe_model(config) -> nn.Module:
    model = build_model(config.model.name, NUM_CLASSES, **config.model.builder_options())
    if config.model.frozen_stages:
        freeze_encoder_stages(model, config.model.frozen_stages)
    return model


def _full_decoder_unet(config) -> nn.Module:
    """The recipe's encoder under U-Net's default decoder, down to full resolution."""
    options = config.model.builder_options() | {"decoder_widths": None}
    return build_model(config.model.name, NUM_CLASSES, **options)


def _smp_unet() -> nn.Module:
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        raise SystemExit(
            "benchmarks/speed.py compares with segmentation_models_pytorch: "
            "pip install segmentation-models-pytorch"
        ) from None
    # The same timm EfficientNet-Lite0 encoder; weights do not change the speed.
    return smp.Unet("tu-efficientnet_lite0", encoder_weights=None, classes=NUM_CLASSES)


def training_flops_per_image(model: nn.Module, crop: int) -> float:
    """Forward + backward FLOPs of one training image, as 3x the forward: the backward
    pass computes gradients for both inputs and weights. (torch's FlopCounterMode counts
    a depthwise convolution's backward as if it were dense, 60x too high for
    EfficientNet, so the backward is not counted directly.)"""
    return 3 * count_flops(model, crop, crop)


def plain_loop(model: nn.Module) -> Callable[[list], None]:
    step = plain_step(model, IGNORE_INDEX)

    def run(batches: list) -> None:
        model.train()
        for images, masks in batches:
            step(images, masks)

    return run


def _semseg_loop(config) -> Callable[[nn.Module], Callable[[list], None]]:
    def make(model: nn.Module) -> Callable[[list], None]:
        if config.train.channels_last:
            model.to(memory_format=torch.channels_last)
        step = semseg_step(
            model,
            NUM_CLASSES,
            resolve_amp(config.train.amp, torch.device("cpu")),
            config.loss,
            config.optim,
            IGNORE_INDEX,
            # Uniform class weights: the same cost as the recipe's, no dataset needed.
            class_weights=[1.0] * NUM_CLASSES,
        )
        return lambda batches: train_one_epoch(step, batches, "semseg step", "")

    return make


def inference_comparison(config, repeats: int) -> dict[str, float]:
    batch = torch.rand(1, 3, 360, 480)
    cpu = torch.device("cpu")
    # semseg's default inference path: channels_last, eval.amp=auto (bf16 on CPUs with it).
    settings = InferenceSettings(amp_dtype=resolve_amp("auto", cpu))
    models = {}
    for label, options in FAST_MODELS.items():
        models[label] = build_model(label.split(" ")[0], NUM_CLASSES, **options).eval()
    recipe = "camvid recipe (unet + efficientnet_lite0), one pass"
    models[recipe] = _recipe_model(config).eval()
    for model in models.values():
        model.to(memory_format=torch.channels_last)
    results = {}
    with torch.inference_mode():
        for label, model in models.items():
            results[f"semseg {label}"] = images_per_second(
                lambda model=model: predict_logits(model, batch, settings), repeats
            )
        # As benchmarks/camvid.py scores the test images: eval.scales and eval.flip.
        as_scored = InferenceSettings.from_config(config.eval, cpu)
        results[f"semseg camvid recipe, {as_scored.describe()}"] = images_per_second(
            lambda: predict_logits(models[recipe], batch, as_scored), repeats
        )
        results["semseg lraspp (eval.amp=off: fp32)"] = images_per_second(
            lambda: predict_logits(models["lraspp"], batch, InferenceSettings()), repeats
        )
        reference = reference_model()
        results[REFERENCE] = images_per_second(lambda: reference(batch)["out"], repeats)
        # The same model with semseg's inference settings, to separate model from settings.
        reference.to(memory_format=torch.channels_last)
        nhwc = batch.contiguous(memory_format=torch.channels_last)
        results[f"{REFERENCE_NAME} (channels_last)"] = images_per_second(
            lambda: reference(nhwc)["out"], repeats
        )
        if settings.amp_dtype is not None:
            with autocast(cpu, settings.amp_dtype):
                results[f"{REFERENCE_NAME} (channels_last, bf16 autocast)"] = images_per_second(
                    lambda: reference(nhwc)["out"], repeats
                )
    return results


def reference_model() -> nn.Module:
    """The real-time reference: torchvision's LR-ASPP MobileNetV3-Large, 11 classes, as a
    user runs it (fp32, contiguous; untrained: speed does not depend on the weights)."""
    return torchvision.models.segmentation.lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=NUM_CLASSES
    ).eval()


@torch.inference_mode()
def reference_images_per_second(repeats: int = 10) -> float:
    """One 360x480 image at a time through `reference_model()`."""
    model, image = reference_model(), torch.rand(1, 3, 360, 480)
    return images_per_second(lambda: model(image)["out"], repeats)


def images_per_second(call: Callable[[], object], repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return round(1 / statistics.median(times), 2)


if __name__ == "__main__":
    main()
