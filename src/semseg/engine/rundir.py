"""The run directory: naming, resolved config, environment record, metric log."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
import torchvision

from semseg._version import __version__
from semseg.config import Config
from semseg.errors import SemsegError
from semseg.files import json_safe, write_text_atomic


def named_run_dir(config: Config) -> Path:
    """runs/NAME, or runs/FORMAT-MODEL without train.name."""
    stem = config.train.name or f"{config.data.format}-{config.model.name}"
    return config.train.output_dir / stem


def create_run_dir(config: Config, reuse: bool = False) -> Path:
    """runs/NAME; without train.name, FORMAT-MODEL with -2, -3, ... if it exists.
    `reuse` (train.resume=auto with no last.pt yet): the named folder, existing or not."""
    run_dir = named_run_dir(config)
    if config.train.name and run_dir.exists() and not reuse:
        raise SemsegError(
            f"{run_dir}: run folder exists; choose another train.name or continue it "
            f"with --resume {run_dir / 'last.pt'}"
        )
    stem, number = run_dir, 2
    while not config.train.name and run_dir.exists() and not reuse:
        run_dir = stem.with_name(f"{stem.name}-{number}")
        number += 1
    try:
        run_dir.mkdir(parents=True, exist_ok=reuse)
    except OSError as err:
        raise SemsegError(f"{run_dir}: cannot create run folder ({err.strerror})") from None
    return run_dir


def write_metrics_log(path: Path, history: list[dict[str, Any]]) -> None:
    """metrics.jsonl: one JSON object per epoch (rewritten whole, so a resumed run's log
    holds exactly the epochs its checkpoint has)."""
    lines = "".join(json.dumps(json_safe(record)) + "\n" for record in history)
    write_text_atomic(path, lines)


def environment_record(device: torch.device, dataset_fingerprint: str) -> dict[str, Any]:
    return {
        "semseg": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "git_commit": _git_commit(),
        "dataset_fingerprint": dataset_fingerprint,
    }


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None
