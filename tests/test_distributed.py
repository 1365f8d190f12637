"""semseg under torchrun: real processes launched through torch.distributed.run (2 CPU
workers, gloo) on the shapes dataset with sizes that do not divide by the world size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import RandomSampler, WeightedRandomSampler

import semseg
from semseg.data.sampling import EpochShards, EvaluationShard

# Odd sizes: 37 training images (18 per rank, one dropped), 13 validation images (7 + 6).
TINY = [
    "data.shapes.num_train=37",
    "data.shapes.num_val=13",
    "data.shapes.size=32",
    "data.batch_size=4",
    "data.num_workers=0",
    "eval.batch_size=2",
    "model.base_width=8",
    "train.name=run",
]

# A loss that misbehaves once, on one rank, as SEMSEG_CHAOS="ACTION RANK STEP" says
# (kill: SIGKILL itself, term: SIGTERM itself, nan: a non-finite loss), on torchrun's
# first launch only; cross-entropy otherwise.
CHAOS_PLUGIN = """
import os, signal
import torch
from torch import nn
import semseg

calls = 0

@semseg.register_loss("chaos")
def chaos(logits, target, ignore_index=255, weights=None):
    global calls
    loss = nn.functional.cross_entropy(logits, target, weight=weights, ignore_index=ignore_index)
    action, rank, step = os.environ.get("SEMSEG_CHAOS", "none -1 0").split()
    first_launch = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
    if not logits.requires_grad or os.environ["RANK"] != rank or not first_launch:
        return loss
    calls += 1
    if calls == int(step):
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if action == "term":
            os.kill(os.getpid(), signal.SIGTERM)
        if action == "nan":
            return loss * float("nan")
    return loss
"""


def torchrun(
    cwd: Path,
    *args: str,
    extra: list[str] = (),
    env: dict | None = None,
    timeout: int = 180,
    processes: int = 2,
):
    """`python -m torch.distributed.run --nproc_per_node=2 [extra] -m semseg ARGS` in `cwd`,
    each rank's output in cwd/logs."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={processes}",
        "--standalone",
        "--log-dir",
        str(cwd / "logs"),
        "--redirects=3",
        *extra,
        "-m",
        "semseg",
        *args,
    ]
    environment = os.environ | {"OMP_NUM_THREADS": "1"} | (env or {})
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environment
    )


def rank_output(cwd: Path, rank: int) -> str:
    """What rank `rank` printed, over every launch (torchrun's log folder)."""
    return "".join(p.read_text() for p in (cwd / "logs").rglob(f"{rank}/stdout.log"))


def metrics_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-process training run with the class-bias fit: the working folder."""
    cwd = tmp_path_factory.mktemp("ddp")
    done = torchrun(cwd, "train", *TINY, "train.epochs=2", "train.fit_class_bias=true")
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd


def test_two_processes_train_and_only_rank_0_writes(two_process_run: Path) -> None:
    cwd = two_process_run
    assert sorted(p.name for p in (cwd / "runs").iterdir()) == ["run"]
    written = sorted(p.name for p in (cwd / "runs" / "run").iterdir())
    assert written == [
        "best.pt",
        "config.yaml",
        "curves.png",
        "env.json",
        "last.pt",
        "metrics.jsonl",
        "samples.png",
        "summary.json",
    ]
    assert [record["epoch"] for record in metrics_log(cwd / "runs" / "run")] == [1, 2]
    main, other = rank_output(cwd, 0), rank_output(cwd, 1)
    assert "torchrun: 2 process(es), batch 4 per device, global batch 8" in main
    assert "run folder" in main and other == ""
    last = torch.load(cwd / "runs" / "run" / "last.pt", weights_only=True)
    assert not any(key.startswith("module.") for key in last["state_dict"])
    assert last["world_size"] == 2


def test_torchrun_with_one_process_trains_exactly_as_a_plain_run(tmp_path: Path) -> None:
    """Same order, seeds, learning rates and evaluation: the same losses, metrics and
    weights, bit for bit (CPU)."""
    options = [*TINY, "train.epochs=2", "model.aux_head=true", "train.accumulate_steps=2"]
    threads = {"OMP_NUM_THREADS": str(torch.get_num_threads())}  # sums in the same order
    done = torchrun(tmp_path, "train", *options, processes=1, env=threads)
    assert done.returncode == 0, done.stderr[-3000:]
    plain = semseg.train(semseg.load_config(None, [*options, f"train.output_dir={tmp_path}/plain"]))
    timing = ("images_per_s", "epoch_time_s")

    def untimed(run_dir: Path) -> list[dict]:
        return [{k: v for k, v in r.items() if k not in timing} for r in metrics_log(run_dir)]

    assert untimed(tmp_path / "runs" / "run") == untimed(plain.run_dir)
    launched = torch.load(tmp_path / "runs" / "run" / "best.pt", weights_only=True)
    alone = torch.load(plain.run_dir / "best.pt", weights_only=True)
    for name, tensor in alone["state_dict"].items():
        assert torch.equal(launched["state_dict"][name], tensor), name


def test_distributed_evaluation_equals_one_process(two_process_run: Path) -> None:
    cwd = two_process_run
    best = cwd / "runs" / "run" / "best.pt"
    options = ["eval.boundary_metrics=true"]
    done = torchrun(cwd, "eval", str(best), "--out", "two.json", *options)
    assert done.returncode == 0, done.stderr[-3000:]
    semseg.evaluate(best, overrides=options, out=cwd / "one.json")
    one, two = (json.loads((cwd / name).read_text()) for name in ("one.json", "two.json"))
    boundary = {"boundary_f1", "mean_boundary_f1"}  # float sums: equal up to rounding
    for key, value in one["metrics"].items():
        if key in boundary and isinstance(value, list):
            assert two["metrics"][key] == pytest.approx(value, rel=1e-12, nan_ok=True), key
        elif key in boundary:
            assert two["metrics"][key] == pytest.approx(value, rel=1e-12), key
        else:
            assert two["metrics"][key] == value, key
    assert two["images"] == 13


def test_distributed_class_bias_fit_equals_one_process(two_process_run: Path) -> None:
    best = two_process_run / "runs" / "run" / "best.pt"
    fitted = torch.load(best, weights_only=True)["class_bias_fit"]
    alone = semseg.calibrate(best, out=two_process_run / "alone.pt")
    assert fitted["strength"] == alone.strength
    assert fitted["pixels"] == alone.pixels
    assert fitted["miou_before"] == alone.miou_before
    assert fitted["miou_after"] == alone.miou_after


def test_a_two_process_run_resumes_as_one_process(two_process_run: Path) -> None:
    run_dir = two_process_run / "runs" / "run"
    last = run_dir / "last.pt"
    config = semseg.load_config(
        None, ["train.epochs=3", "train.fit_class_bias=false"], base=torch.load(last)["config"]
    )
    semseg.train(config, resume=last)
    assert [record["epoch"] for record in metrics_log(run_dir)] == [1, 2, 3]
    assert torch.load(run_dir / "last.pt", weights_only=True)["world_size"] == 1


def test_predict_splits_the_files_across_processes(two_process_run: Path, tmp_path: Path) -> None:
    best = two_process_run / "runs" / "run" / "best.pt"
    images = tmp_path / "images"
    dataset = semseg.load_config(None, TINY).data
    from semseg.data import eval_dataset

    split = eval_dataset(dataset, None)
    images.mkdir()
    from PIL import Image

    for index in range(5):
        pixels = split.load(index)[0].permute(1, 2, 0).numpy()
        Image.fromarray(pixels).save(images / f"img{index}.png")
    done = torchrun(tmp_path, "predict", str(best), str(images), "--out", "masks", "--no-overlays")
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == [
        f"img{index}.png" for index in range(5)
    ]
    assert "wrote 5 mask(s)" in rank_output(tmp_path, 0)


def test_killed_worker_restarts_and_the_run_finishes(tmp_path: Path) -> None:
    (tmp_path / "chaos.py").write_text(CHAOS_PLUGIN)
    # Rank 1 kills itself at its 6th training batch: in epoch 2 (4 batches per epoch).
    options = [*TINY, "train.epochs=3", "train.resume=auto", "loss.name=chaos"]
    options.append(f"plugins=[{tmp_path / 'chaos.py'}]")
    done = torchrun(
        tmp_path,
        "train",
        *options,
        extra=["--max-restarts=1", "--monitor-interval=0.2"],
        env={"SEMSEG_CHAOS": "kill 1 6"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = tmp_path / "runs" / "run"
    assert "resuming" in rank_output(tmp_path, 0)
    assert [record["epoch"] for record in metrics_log(run_dir)] == [1, 2, 3]
    best = torch.load(run_dir / "best.pt", weights_only=True)
    assert best["epoch"] in (1, 2, 3) and best["metrics"]["miou"] >= 0
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


@pytest.mark.parametrize(
    ("chaos", "status", "message"),
    [("nan 1 6", "failed", "non-finite"), ("term 1 6", "interrupted", "interrupted")],
)
def test_one_rank_stops_every_rank_at_the_same_step(
    tmp_path: Path, chaos: str, status: str, message: str
) -> None:
    """A non-finite loss or a SIGTERM on rank 1 in epoch 2 ends both ranks (no hang);
    last.pt stays epoch 1's and summary.json says how the run stopped."""
    (tmp_path / "chaos.py").write_text(CHAOS_PLUGIN)
    options = [*TINY, "train.epochs=3", "loss.name=chaos", f"plugins=[{tmp_path / 'chaos.py'}]"]
    done = torchrun(tmp_path, "train", *options, env={"SEMSEG_CHAOS": chaos}, timeout=120)
    assert done.returncode != 0
    run_dir = tmp_path / "runs" / "run"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == status and message in summary["error"]
    assert torch.load(run_dir / "last.pt", weights_only=True)["epoch"] == 1


def test_time_budget_ends_every_rank_together(tmp_path: Path) -> None:
    done = torchrun(tmp_path, "train", *TINY, "train.epochs=200", "train.time_budget=4s")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "runs" / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] < 200
    assert "time budget of 4s spent" in rank_output(tmp_path, 0)


def test_sync_bn_is_refused_on_the_cpu() -> None:
    from semseg.engine.distributed import sync_batch_norm
    from semseg.errors import SemsegError

    with pytest.raises(SemsegError, match="'model.sync_bn': SyncBatchNorm needs CUDA"):
        sync_batch_norm(torch.nn.BatchNorm2d(4), torch.device("cpu"))


# Samplers, without processes.


def test_training_shards_are_disjoint_equal_and_one_shard_is_the_plain_order() -> None:
    def order(shard, weights=None):
        return list(EpochShards(37, shard, torch.Generator().manual_seed(5), weights))

    shards = [order((rank, 3)) for rank in range(3)]
    assert [len(s) for s in shards] == [12, 12, 12]
    assert len(set(shards[0]) | set(shards[1]) | set(shards[2])) == 36
    plain = list(RandomSampler(range(37), generator=torch.Generator().manual_seed(5)))
    assert order((0, 1)) == plain
    weights = torch.rand(37, dtype=torch.float64)
    drawn = list(WeightedRandomSampler(weights, 37, generator=torch.Generator().manual_seed(5)))
    assert order((0, 1), weights) == drawn
    split = [order((rank, 2), weights) for rank in range(2)]
    assert [x for pair in zip(*split, strict=True) for x in pair] == drawn[:36]


def test_evaluation_shards_cover_every_sample_once() -> None:
    for count in (1, 2, 13):
        for size in (1, 2, 3, 5):
            covered = sorted(
                i for rank in range(size) for i in EvaluationShard(count, (rank, size))
            )
            assert covered == list(range(count))
