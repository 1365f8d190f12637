"""Where benchmark figures live: every script prints its result as JSON and keeps a copy
in benchmarks/results/SCRIPT-YYYYMMDDTHHMMSS.json with the command line, the commit and
the machine it ran on, so a table in the docs can cite the file behind each figure."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parents[1]


def cpu_record() -> dict[str, Any]:
    """CPU model, the ISA features that decide bf16 speed, and the threads torch uses."""
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
    }


def machine_record() -> dict[str, Any]:
    record = {**cpu_record(), "torch": torch.__version__, "python": platform.python_version()}
    if torch.cuda.is_available():
        record["gpu"] = torch.cuda.get_device_name()
    return record


def training_record(run_dir: Path, train_seconds: float) -> dict[str, Any]:
    """What a time-budgeted run bought, from its metrics.jsonl: epochs, images/s overall
    and per epoch (min/median/max), and the seconds spent beside the training epochs
    (setup, validations, checkpoints, the class-bias fit)."""
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
    epoch_seconds = sum(r["epoch_time_s"] for r in history)
    trained_images = sum(r["images_per_s"] * r["epoch_time_s"] for r in history)
    rates = [r["images_per_s"] for r in history]
    return {
        "training_seconds": round(train_seconds, 1),
        "training_images_per_s": round(trained_images / epoch_seconds, 2),
        "epochs": len(history),
        "epoch_images_per_s": {
            "min": round(min(rates), 2),
            "median": round(statistics.median(rates), 2),
            "max": round(max(rates), 2),
        },
        "seconds_outside_training_epochs": round(train_seconds - epoch_seconds, 1),
    }


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def publish(script: str, result: dict[str, Any]) -> Path:
    """Print `result` as JSON and save it with its provenance; returns the saved file."""
    print(json.dumps(result, indent=2), flush=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = RESULTS / f"{script}-{stamp}.json"
    record = {
        "script": f"benchmarks/{script}.py",
        "command": " ".join(["python", f"benchmarks/{script}.py", *sys.argv[1:]]),
        "commit": _commit(),
        "finished_utc": stamp,
        "machine": machine_record(),
        "result": result,
    }
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"saved {path}", file=sys.stderr)
    return path
