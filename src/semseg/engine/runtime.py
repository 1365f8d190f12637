"""Devices, seeding and determinism."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from semseg.errors import SemsegError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SemsegError(
            f"config key 'train.device': {name} requested but CUDA is not available; "
            "use train.device=cpu or auto"
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise SemsegError("config key 'train.device': mps is not available; use cpu or auto")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """Every epoch starts from its own seed, so a run resumed at an epoch boundary draws
    exactly the random numbers an uninterrupted run would have drawn."""
    return (seed * 1_000_003 + epoch) % 2**63


@contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """Deterministic kernels for the duration of a run, restoring the previous setting.

    warn_only: on CUDA a few ops every segmentation step uses (the 2-D cross-entropy
    reduction, bilinear upsampling's backward) have no deterministic kernel, and strict
    mode would stop training with an error (seen on an H100); they warn instead, and
    such runs can differ in the last bits. On the CPU every op is deterministic."""
    if not enabled:
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_benchmark = torch.backends.cudnn.benchmark
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn_only)
        torch.backends.cudnn.benchmark = previous_benchmark
