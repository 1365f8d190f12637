"""Every registered model on one accuracy-speed chart: each trained with the same time
budget on the same data (CamVid by default, the recipe's data pipeline, loss and class
bias), scored one pass on the test split, and timed one pass at 360x480, batch 1 on
this CPU next to torchvision's lraspp_mobilenet_v3_large in fp32 (the reference the
real-time goal is stated against). Writes RESULTS.json (one entry per model, kept
between runs: a rerun trains only the models missing), RESULTS.md (the table) and
RESULTS.png (test mIoU against images/s).

    python benchmarks/model_zoo.py --budget 2m          # into benchmarks/zoo/
    python benchmarks/model_zoo.py --models lraspp,bisenetv2 --budget 2m --out /tmp/zoo
    python benchmarks/model_zoo.py -c configs/quickstart.yaml --split val --budget 20s \\
        --models unet_small,fast_scnn --out /tmp/zoo-shapes      # a quick try, no CamVid

Models that take an encoder get the ImageNet EfficientNet-Lite0 (the one pretrained
encoder available offline) and the recipe's 0.3x encoder rate; the others (FCN, SegNet,
U-Net, the real-time from-scratch family, SegFormer, Swin-Unet) train from scratch;
SETR keeps its ViT.
"""

from __future__ import annotations

import argparse
import inspect
import json
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from results import cpu_record, publish  # noqa: E402
from speed import reference_images_per_second  # noqa: E402

import semseg  # noqa: E402
from semseg.data import train_dataset  # noqa: E402
from semseg.engine.precision import cpu_has_fast_bf16, faster_inference_dtype  # noqa: E402
from semseg.engine.profile import count_flops, count_parameters, measure_latency  # noqa: E402
from semseg.models import build_model, list_models  # noqa: E402
from semseg.models.registry import MODELS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZE = (360, 480)


def model_overrides(name: str) -> list[str]:
    """The same encoder for every encoder-based model (see the module docstring)."""
    parameters = inspect.signature(MODELS.get(name).function).parameters
    if "encoder" not in parameters or name.startswith("setr"):
        return [
            f"model.name={name}",
            "model.encoder=null",
            "model.pretrained=false",
            "optim.encoder_lr_scale=1.0",
        ]
    return [f"model.name={name}", "model.encoder=efficientnet_lite0", "model.pretrained=true"]


def zoo_config(name: str, args: argparse.Namespace, runs: str) -> semseg.Config:
    overrides = [
        *args.set,
        *model_overrides(name),
        f"train.time_budget={args.budget}",
        "train.name=zoo",
        f"train.output_dir={runs}",
        # Validate once, after the last epoch (always done): validations inside a short
        # budget would spend it on inference.
        "train.val_every=1000",
        "model.frozen_stages=0",
        "model.decoder_widths=null",
        # One pass for the class-bias fit as for the test score (the recipe fits it
        # under its six-pass TTA, which would cost the heavy models minutes each).
        "eval.scales=[1.0]",
        "eval.flip=false",
    ]
    return semseg.load_config(args.config, overrides)


def train_and_score(name: str, args: argparse.Namespace) -> dict:
    """Train within the budget, fit the class bias, score the split one pass."""
    with tempfile.TemporaryDirectory() as runs:
        config = zoo_config(name, args, runs)
        result = semseg.train(config)
        history = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
        summary = semseg.evaluate(
            result.run_dir / "best.pt",
            split=args.split,
            overrides=["eval.scales=[1.0]", "eval.flip=false", "eval.boundary_metrics=false"],
            out=Path(runs) / "eval.json",
        )
    return {
        "model": name,
        "encoder": config.model.encoder,
        "epochs": len(history),
        "miou": round(100 * summary["metrics"]["miou"], 2),
        "trained_on": cpu_record()["cpu"],
    }


def measure_speed(name: str, args: argparse.Namespace, classes: int) -> dict:
    """Size and one-pass speed at 360x480, batch 1, in the precision eval.amp=auto picks
    here (bf16 or fp32: the faster). Measured for every model in one pass at the end of
    a run, next to the reference, so the column compares like with like even when the
    training results were collected over several runs."""
    model = build_model(name, classes, **zoo_config(name, args, "unused").model.builder_options())
    flops = count_flops(model, *SIZE)
    model.to(memory_format=torch.channels_last)
    dtype = faster_inference_dtype(model, torch.device("cpu")) if cpu_has_fast_bf16() else None
    latency = min(measure_latency(model, *SIZE, repeats=5, amp_dtype=dtype) for _ in range(2))
    return {
        "params_m": round(count_parameters(model) / 1e6, 2),
        "gflops": round(flops / 1e9, 1),
        "images_per_s": round(1 / latency, 2),
        "precision": "bf16" if dtype else "fp32",
    }


def write_table(results: dict, reference: float, path: Path, split: str) -> None:
    lines = [
        f"| model | encoder | epochs | {split} mIoU (one pass) | params (M) | GFLOPs | img/s "
        f"| x torchvision lraspp ({reference} img/s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(results.values(), key=lambda r: -r["miou"]):
        lines.append(
            f"| `{row['model']}` | {row['encoder'] or '-'} | {row['epochs']} | {row['miou']} "
            f"| {row['params_m']} | {row['gflops']} | {row['images_per_s']} "
            f"| {row['images_per_s'] / reference:.2f} |"
        )
    path.write_text("\n".join(lines) + "\n")


def write_chart(results: dict, reference: float, path: Path, budget: str, split: str) -> None:
    figure, axis = plt.subplots(figsize=(8, 5.5))
    for row in results.values():
        axis.scatter(row["images_per_s"], row["miou"], s=20 + 4 * row["params_m"] ** 0.8)
        axis.annotate(row["model"], (row["images_per_s"], row["miou"]), fontsize=7)
    axis.axvline(reference, color="gray", linestyle="--", linewidth=1)
    axis.text(reference, axis.get_ylim()[0], " torchvision lraspp (fp32)", fontsize=7)
    axis.set_xscale("log")
    axis.set_xlabel("images/s, one pass, 360x480, batch 1, this CPU (log scale)")
    axis.set_ylabel(f"{split} mIoU, one pass (%)")
    axis.set_title(f"Every model, {budget} of training each (marker area ~ parameters)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", type=Path, default=REPO / "configs" / "camvid.yaml")
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "camvid"))
    parser.add_argument("--budget", default="10m", help="training time per model")
    parser.add_argument("--split", default="test")
    parser.add_argument("--models", help="comma-separated; default every registered model")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "zoo")
    parser.add_argument("--set", nargs="*", default=[], help="extra KEY=VALUE overrides")
    args = parser.parse_args()
    if args.config.name.startswith("camvid"):
        args.set = [f"data.root={args.root}", *args.set]
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "RESULTS.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    data = semseg.load_config(args.config, args.set).data
    num_classes = train_dataset(data).classes.num_classes
    names = args.models.split(",") if args.models else list_models()
    for name in names:
        if name not in results:
            results[name] = train_and_score(name, args)
            store.write_text(json.dumps(results, indent=2))
    for name in names:
        results[name] |= measure_speed(name, args, num_classes)
    store.write_text(json.dumps(results, indent=2))
    reference = reference_images_per_second()
    write_table(results, reference, args.out / "RESULTS.md", args.split)
    write_chart(results, reference, args.out / "RESULTS.png", args.budget, args.split)
    publish(
        "model_zoo", {"budget": args.budget, "reference_images_per_s": reference, "models": results}
    )


if __name__ == "__main__":
    main()
