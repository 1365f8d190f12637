"""Every registered model through `semseg export` and back: exported from a checkpoint of
its default build (random weights: parity does not need trained ones), then onnxruntime
against PyTorch (fp32) at several batch sizes and odd image sizes. Prints JSON: per model,
whether height, width and batch stayed dynamic, the argmax agreement and the largest
logit difference at each size, or the one-line reason it could not be exported.

    python benchmarks/export_models.py
    python benchmarks/export_models.py --models lraspp unet_small
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from onnx_speed import random_checkpoint
from results import publish

import semseg
from semseg.deploy.onnx_export import export_onnx
from semseg.engine.inference import InferenceSettings, predict_logits
from semseg.errors import SemsegError

SIZES = [(1, 45, 61), (1, 96, 128), (3, 130, 71), (1, 361, 479)]  # (batch, height, width)


def check(name: str, folder: Path) -> dict:
    checkpoint = random_checkpoint(folder, name, [f"model.name={name}"])
    out = folder / f"{name}.onnx"
    try:
        export_onnx(checkpoint, out, check=False)
    except SemsegError as err:
        return {"exported": False, "reason": str(err)}
    torch_model = semseg.load(checkpoint, device="cpu").model
    onnx_model = semseg.load(out, device="cpu").model
    fp32 = InferenceSettings()
    results = {}
    generator = torch.Generator().manual_seed(0)
    for batch, height, width in SIZES:
        images = torch.randn(batch, 3, height, width, generator=generator)
        expected = predict_logits(torch_model, images, fp32)
        got = predict_logits(onnx_model, images, fp32)
        agreement = (expected.argmax(1) == got.argmax(1)).float().mean().item()
        results[f"{batch}x{height}x{width}"] = {
            "argmax_agreement": round(agreement, 6),
            "max_logit_difference": float(f"{(expected - got).abs().max().item():.2e}"),
        }
    out.unlink()
    return {"exported": True, "dynamic": "batch, height, width", "parity": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=semseg.list_models())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        report = {name: check(name, Path(folder)) for name in args.models}
    publish("export_models", report)


if __name__ == "__main__":
    main()
