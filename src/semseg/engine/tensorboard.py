"""Optional TensorBoard logging of the per-epoch records (`train.tensorboard=true`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from semseg.errors import SemsegError


class TensorBoardLog:
    def __init__(self, folder: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise SemsegError(
                "config key 'train.tensorboard' needs the tensorboard package: "
                "pip install 'semseg[tensorboard]'"
            ) from None
        self.writer = SummaryWriter(log_dir=str(folder))

    def write(self, record: dict[str, Any]) -> None:
        """Every number of an epoch record, e.g. train_loss, lr, val_miou."""
        epoch = record["epoch"]
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                group = "val" if key.startswith("val_") else "train"
                self.writer.add_scalar(f"{group}/{key.removeprefix('val_')}", value, epoch)
        self.writer.flush()
