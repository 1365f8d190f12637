"""Measure the README's first command: `semseg train` with no arguments.

Runs it in a fresh temporary folder and prints JSON with the wall-clock time (process
start to exit, so imports and data generation count) and the validation mIoU that
`semseg eval` then reproduces from best.pt.

    python benchmarks/quickstart.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import publish

SEMSEG = [sys.executable, "-m", "semseg"]


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        subprocess.run([*SEMSEG, "train"], cwd=folder, check=True, stdout=subprocess.DEVNULL)
        train_seconds = time.perf_counter() - start
        run_dir = Path(folder) / "runs" / "shapes-unet_small"
        summary = json.loads((run_dir / "summary.json").read_text())
        subprocess.run(
            [*SEMSEG, "eval", "runs/shapes-unet_small/best.pt"],
            cwd=folder,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        evaluated = json.loads((run_dir / "eval.json").read_text())
    result = {
        "command": "semseg train",
        "cpu_count": os.cpu_count(),
        "train_wall_seconds": round(train_seconds, 1),
        "best_epoch": summary["best_epoch"],
        "val_miou": round(summary["best"]["miou"], 4),
        "eval_reproduced_miou": round(evaluated["metrics"]["miou"], 4),
    }
    publish("quickstart", result)


if __name__ == "__main__":
    main()
