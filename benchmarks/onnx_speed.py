"""Inference speed of onnxruntime against semseg's own PyTorch path: batch 1, 360x480,
images/s of each model both ways in one run (and PyTorch at batch 4: would a server gain
from batching concurrent requests?) (the PyTorch path as `semseg predict` runs it:
channels_last, eval.amp=auto). Models: lraspp, segformer_b0 (random weights: speed does
not depend on them) and the CamVid recipe's model (its checkpoint when given, else the
recipe's architecture with random weights). Prints JSON; the faster path per model is
what `semseg serve` should be given.

    python benchmarks/onnx_speed.py
    python benchmarks/onnx_speed.py --checkpoint runs/camvid/best.pt --repeats 20
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch
from results import publish
from speed import images_per_second

import semseg
from semseg.engine.checkpoint import model_record, save_checkpoint
from semseg.engine.inference import predict_logits

REPO = Path(__file__).resolve().parents[1]
IMAGE = (360, 480)


def random_checkpoint(folder: Path, name: str, overrides: list[str]) -> Path:
    """A checkpoint of an architecture with random weights (speed needs no training)."""
    config = semseg.load_config(None, ["data.format=camvid", *overrides])
    config = config.model_copy(
        update={"data": config.data.model_copy(update={"mean": (0.5,) * 3, "std": (0.5,) * 3})}
    )
    options = config.model.builder_options() | {"pretrained": None}
    model = semseg.build_model(config.model.name, 11, **options)
    path = folder / f"{name}.pt"
    classes = semseg.ClassSet(tuple(f"c{i}" for i in range(11)), ignore_index=255)
    save_checkpoint(
        path,
        {
            "model": model_record(config, 11),
            "state_dict": model.state_dict(),
            "classes": classes.to_dict(),
            "config": config.to_plain(),
        },
    )
    return path


def compare(checkpoint: Path, folder: Path, repeats: int) -> dict[str, float]:
    from semseg.deploy.onnx_export import export_onnx

    onnx_file = folder / f"{checkpoint.stem}.onnx"
    export_onnx(checkpoint, onnx_file, check=False)
    image = torch.randn(1, 3, *IMAGE)
    speeds = {}
    for label, source in (("pytorch", checkpoint), ("onnxruntime", onnx_file)):
        predictor = semseg.load(source, device="cpu")
        settings = predictor.inference.single_pass()
        speeds[label] = images_per_second(
            lambda predictor=predictor, settings=settings: predict_logits(
                predictor.model, image, settings
            ),
            repeats,
        )
    # Would the server gain from batching concurrent requests? Images/s at batch 4.
    predictor = semseg.load(checkpoint, device="cpu")
    batch = torch.randn(4, 3, *IMAGE)
    settings = predictor.inference.single_pass()
    per_batch = images_per_second(
        lambda: predict_logits(predictor.model, batch, settings), max(2, repeats // 4)
    )
    speeds["pytorch_batch4"] = round(4 * per_batch, 2)
    speeds["faster"] = max(("pytorch", "onnxruntime"), key=speeds.get)
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="the CamVid recipe's best.pt")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    camvid = semseg.load_config(REPO / "configs" / "camvid.yaml", ["data.root=."]).model
    recipe = [
        f"model.name={camvid.name}",
        f"model.encoder={camvid.encoder}",
        f"model.decoder_widths={list(camvid.decoder_widths)}",
    ]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        models = {
            "lraspp": random_checkpoint(folder, "lraspp", ["model.name=lraspp"]),
            "segformer_b0": random_checkpoint(folder, "segformer_b0", ["model.name=segformer_b0"]),
            "camvid recipe": args.checkpoint or random_checkpoint(folder, "recipe", recipe),
        }
        results = {name: compare(path, folder, args.repeats) for name, path in models.items()}
    publish(
        "onnx_speed",
        {
            "images_per_s_batch1_360x480": results,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "recipe_weights": "checkpoint" if args.checkpoint else "random",
        },
    )


if __name__ == "__main__":
    main()
