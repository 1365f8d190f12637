"""`semseg export CHECKPOINT --out model.onnx`: an ONNX graph with dynamic batch,
height and width, the class bias inside it, metadata for any app, and a parity check
against PyTorch right after writing (the file is removed when the two disagree)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semseg._version import __version__
from semseg.console import console
from semseg.data import eval_dataset
from semseg.deploy.onnx_model import INPUT_NAME, OUTPUT_NAME, OnnxModule
from semseg.engine.bundle import ModelBundle, bundle_from_payload
from semseg.engine.checkpoint import load_checkpoint
from semseg.errors import SemsegError
from semseg.files import check_output_file

OPSET = 18
MIN_AGREEMENT = 0.999  # share of pixels whose argmax must match PyTorch's
PARITY_IMAGES = 8  # validation images compared, when the dataset is readable
FALLBACK_SIZES = ((361, 479), (250, 333))  # odd sizes: the padding path must hold


class Uint8Input(nn.Module):
    """The model behind N x H x W x C uint8 input: normalisation in the graph, so an app
    feeds the bytes a decoder gives it."""

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        images = pixels.permute(0, 3, 1, 2).float() / 255  # N x C x H x W in [0, 1]
        return self.model((images - self.mean) / self.std)


@dataclass(frozen=True)
class ParityReport:
    images: str  # what was compared
    max_logit_difference: float
    argmax_agreement: float


def export_onnx(
    checkpoint: Path | str, out: Path | str, uint8_input: bool = False, check: bool = True
) -> ParityReport | None:
    """Export a checkpoint's model (class bias included) to ONNX and check it.

    Args:
        checkpoint: a semseg checkpoint, e.g. runs/NAME/best.pt.
        out: the .onnx file to write.
        uint8_input: take N x H x W x C uint8 RGB and normalise inside the graph.
        check: compare onnxruntime with PyTorch on validation images (or random ones).

    Returns:
        The parity figures (None without `check`).

    Raises:
        SemsegError: the model cannot be exported (the reason and what would help), or
            onnxruntime disagrees with PyTorch on more than 0.1 % of the pixels (the
            file is removed).
    """
    out = check_output_file(out, "--out")
    payload = load_checkpoint(checkpoint)
    bundle = bundle_from_payload(payload, checkpoint)
    model = bundle.model.float().eval()
    mean, std = bundle.config.data.normalization()
    exported = Uint8Input(model, mean, std) if uint8_input else model
    metadata = _metadata(bundle, payload["model"], uint8_input)
    _export(exported, payload["model"]["name"], bundle, out, uint8_input)
    _add_metadata(out, metadata)
    if not check:
        return None
    report = _parity(model, OnnxModule(out, metadata, ["CPUExecutionProvider"]), bundle)
    console.print(
        f"parity on {report.images}: largest logit difference "
        f"{report.max_logit_difference:.2e}, argmax agreement {100 * report.argmax_agreement:.3f} %"
    )
    if report.argmax_agreement < MIN_AGREEMENT:
        out.unlink(missing_ok=True)
        raise SemsegError(
            f"{out}: onnxruntime agrees with PyTorch on only "
            f"{100 * report.argmax_agreement:.2f} % of the pixels (needs 99.9 %); the file was "
            "removed; please report the model and versions"
        )
    return report


def _export(
    module: nn.Module, name: str, bundle: ModelBundle, out: Path, uint8_input: bool
) -> None:
    """torch.export with every input axis but the channels left to it (Dim.AUTO: fixed
    minimums made it guard on sizes it could not reason about), then to ONNX; refused
    when the graph came out with a fixed batch, height or width."""
    channels = 1 if bundle.config.data.image_mode == "gray" else 3
    # Batch 2 and odd sides: a 1 or a multiple of the stride would be specialised.
    if uint8_input:
        example = torch.randint(0, 255, (2, 67, 93, channels), dtype=torch.uint8)
        axes = (0, 1, 2)
    else:
        example = torch.randn(2, channels, 67, 93)
        axes = (0, 2, 3)
    dynamic = {axis: torch.export.Dim.AUTO for axis in axes}
    try:
        with torch.no_grad():
            program = torch.onnx.export(
                module,
                (example,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=OPSET,
                dynamic_shapes=(dynamic,),
                dynamo=True,
                verbose=False,
            )
        program.save(str(out))
    except Exception as err:
        out.unlink(missing_ok=True)
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
        raise SemsegError(
            f"model {name!r} cannot be exported to ONNX ({type(err).__name__}: {reason}); "
            "docs/deployment.md lists each model's export status"
        ) from None
    _refuse_fixed_sizes(out, name, axes)


def _refuse_fixed_sizes(path: Path, name: str, axes: tuple[int, ...]) -> None:
    import onnx

    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    fixed = [axis for axis in axes if dims[axis].HasField("dim_value")]
    if fixed:
        path.unlink(missing_ok=True)
        raise SemsegError(
            f"model {name!r} exports only with fixed input axes {fixed} (its code ties "
            "the graph to the example's size); docs/deployment.md lists each model's "
            "export status"
        )


def _metadata(bundle: ModelBundle, record: dict[str, Any], uint8_input: bool) -> dict[str, Any]:
    mean, std = bundle.config.data.normalization()
    return {
        "format": 1,
        "model": record,
        "classes": bundle.classes.to_dict(),
        "config": bundle.config.to_plain(),
        "info": bundle.info,
        "mean": list(mean),
        "std": list(std),
        "input_dtype": "uint8" if uint8_input else "float32",
        "input_layout": "NHWC" if uint8_input else "NCHW",
    }


def _add_metadata(path: Path, metadata: dict[str, Any]) -> None:
    """Plain keys for any app, and `semseg` (everything, as JSON) for semseg itself."""
    import onnx

    graph = onnx.load(str(path))
    classes = metadata["classes"]
    plain = {
        "class_names": classes["names"],
        "palette": classes["palette"],
        "ignore_index": classes["ignore_index"],
        "mean": metadata["mean"],
        "std": metadata["std"],
        "input_layout": metadata["input_layout"],
        "input_dtype": metadata["input_dtype"],
        "input_note": "RGB; floats are (x / 255 - mean) / std; output logits N x C x H x W",
        "class_bias": metadata["info"].get("class_bias"),
        "metrics": _headline(metadata["info"].get("metrics")),
        "semseg_version": __version__,
    }
    entries = {key: json.dumps(value) for key, value in plain.items()}
    entries["semseg"] = json.dumps(metadata)
    onnx.helper.set_model_props(graph, entries)
    onnx.save(graph, str(path))


def _headline(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    if not metrics:
        return None
    return {key: metrics.get(key) for key in ("miou", "pixel_accuracy", "mean_accuracy")}


def _parity(model: nn.Module, onnx_model: OnnxModule, bundle: ModelBundle) -> ParityReport:
    images, description = _parity_images(bundle)
    worst, agree, total = 0.0, 0, 0
    with torch.inference_mode():
        for image in images:
            expected = model(image)
            got = onnx_model(image)
            worst = max(worst, float((expected - got).abs().max()))
            agree += int((expected.argmax(1) == got.argmax(1)).sum())
            total += expected.argmax(1).numel()
    return ParityReport(description, worst, agree / max(1, total))


def _parity_images(bundle: ModelBundle) -> tuple[list[torch.Tensor], str]:
    """Validation images of the model's dataset when readable, else random images at odd
    sizes (normalised, one per batch)."""
    try:
        dataset = eval_dataset(bundle.config.data)
        count = min(PARITY_IMAGES, len(dataset))
        images = [dataset[index][0].unsqueeze(0) for index in range(count)]
        return images, f"{count} validation images"
    except SemsegError:
        channels = 1 if bundle.config.data.image_mode == "gray" else 3
        generator = torch.Generator().manual_seed(0)
        images = [torch.randn(1, channels, h, w, generator=generator) for h, w in FALLBACK_SIZES]
        sizes = " and ".join(f"{h}x{w}" for h, w in FALLBACK_SIZES)
        return images, f"random images at {sizes} (the dataset is not readable here)"
