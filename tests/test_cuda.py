"""CUDA paths (skipped without a GPU; run on a lent GPU machine): mixed precision with
its gradient scaler, EMA and the auxiliary head on the device, torch.compile, batches
pinned in memory that carry skipped samples and worker errors, and CUDA evaluation equal
to the CPU's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import semseg
from conftest import TINY_OVERRIDES
from semseg.engine.checkpoint import load_checkpoint
from test_bad_data import BROKEN_TRAIN, broken_folder, overrides

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("amp", ["bf16", "fp16", "off"])
def test_training_on_cuda_with_each_precision(tmp_path: Path, amp: str) -> None:
    extra = ["train.device=cuda", f"train.amp={amp}", "model.aux_head=true"]
    extra += ["train.ema_decay=0.9", "train.accumulate_steps=2", "train.epochs=3"]
    config = semseg.load_config(None, [*TINY_OVERRIDES, *extra, f"train.output_dir={tmp_path}"])
    result = semseg.train(config)
    assert 0 <= result.best_metrics["miou"] <= 1
    payload = load_checkpoint(result.run_dir / "last.pt")
    assert all(t.device.type == "cpu" for t in payload["state_dict"].values())
    if amp == "fp16":
        assert payload["scaler"]["scale"] > 0  # the scaler ran
    history = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    assert all("train_aux" in record for record in history)


def test_compiled_training_on_cuda(tmp_path: Path) -> None:
    extra = ["train.device=cuda", "train.compile=true", "train.epochs=1"]
    config = semseg.load_config(None, [*TINY_OVERRIDES, *extra, f"train.output_dir={tmp_path}"])
    assert semseg.train(config).best_epoch == 1


def test_pinned_batches_carry_skips_and_errors(tmp_path: Path, run_cli) -> None:
    root = broken_folder(tmp_path / "data")
    args = overrides(root, tmp_path, "train.device=cuda", "data.on_error=skip")
    code, _, err = run_cli("train", *args, "data.max_skipped=0.6")
    assert code == 0, err
    skipped = (tmp_path / "runs" / "bad" / "skipped.txt").read_text().splitlines()
    assert sorted(Path(line.split("\t")[0]).stem for line in skipped) == sorted(BROKEN_TRAIN)
    code, _, err = run_cli("train", *overrides(root, tmp_path, "train.device=cuda", "train.name=s"))
    assert code == 2 and err.count("\n") == 1 and "data.on_error=skip" in err


def test_cuda_evaluation_equals_the_cpus(tmp_path: Path) -> None:
    config = semseg.load_config(
        None, [*TINY_OVERRIDES, "train.device=cuda", f"train.output_dir={tmp_path}"]
    )
    best = semseg.train(config).run_dir / "best.pt"
    scores = {
        device: semseg.evaluate(
            best,
            overrides=[f"train.device={device}", "eval.amp=off"],
            out=tmp_path / f"{device}.json",
        )["metrics"]["miou"]
        for device in ("cuda", "cpu")
    }
    assert abs(scores["cuda"] - scores["cpu"]) < 1e-3


def test_torchrun_on_cuda_with_bf16_and_sync_bn(tmp_path: Path) -> None:
    """DDP on NCCL (world size 1, or every visible GPU up to 2) with bf16 and SyncBN, then
    distributed evaluation equal to one process's."""
    from test_distributed import TINY, torchrun

    processes = min(2, torch.cuda.device_count())
    options = [*TINY, "train.device=cuda", "train.amp=bf16", "model.sync_bn=true"]
    done = torchrun(tmp_path, "train", *options, "train.epochs=2", processes=processes)
    assert done.returncode == 0, done.stderr[-3000:]
    best = tmp_path / "runs" / "run" / "best.pt"
    done = torchrun(tmp_path, "eval", str(best), "--out", "many.json", processes=processes)
    assert done.returncode == 0, done.stderr[-3000:]
    alone = semseg.evaluate(best, out=tmp_path / "one.json")
    many = json.loads((tmp_path / "many.json").read_text())
    assert many["metrics"]["miou"] == alone["metrics"]["miou"]
