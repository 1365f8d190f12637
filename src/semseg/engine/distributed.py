"""Running under torchrun: the process's place in the world (read from torchrun's
environment), the process group, and the few collectives that training, evaluation and
prediction need. semseg never starts processes or process groups of its own making:
outside torchrun the world is this one process and every collective is a no-op.

Small control messages (stop flags, the time spent, objects) travel on a gloo group, so
that with NCCL they never make the GPU wait."""

from __future__ import annotations

import atexit
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from semseg.console import console
from semseg.engine.runtime import resolve_device
from semseg.errors import SemsegError

T = TypeVar("T")

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


@dataclass
class World:
    """This process's rank among `size` processes (one process: rank 0 of 1, inactive)."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    active: bool = False  # launched by torchrun, with a process group
    control: Any = None  # the gloo group for control messages; None: the default group
    interrupted: bool = False  # set by a deferred SIGINT/SIGTERM (see `deferred_interrupts`)

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints progress."""
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """Whether `flag` is true on any rank (every rank must call it at the same point)."""
        return bool(self._reduce(float(flag), dist.ReduceOp.MAX))

    def max(self, value: float) -> float:
        """The largest `value` over the ranks."""
        return self._reduce(value, dist.ReduceOp.MAX)

    def sum(self, value: float) -> float:
        return self._reduce(value, dist.ReduceOp.SUM)

    def _reduce(self, value: float, op: dist.ReduceOp) -> float:
        """One number all-reduced on the control group (float64: exact for counts)."""
        if not self.active:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(tensor, op=op, group=self.control)
        return float(tensor.item())

    def broadcast(self, value: T) -> T:
        """Rank 0's `value`, on every rank."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def main_computes(self, compute: Callable[[], T]) -> T:
        """`compute()` run once, on rank 0, and its result shared with every rank; its
        SemsegError is raised on every rank (rather than leaving the others waiting)."""
        if not self.active:
            return compute()
        outcome: tuple[str, Any] | None = None
        if self.is_main:
            try:
                outcome = ("value", compute())
            except SemsegError as error:
                outcome = ("error", str(error))
                self.broadcast(outcome)
                raise
        kind, value = self.broadcast(outcome)
        if kind == "error":
            raise SemsegError(value)
        return value

    def gather(self, value: T) -> list[T]:
        """Every rank's `value`, in rank order, on every rank."""
        if not self.active:
            return [value]
        values: list[Any] = [None] * self.size
        dist.all_gather_object(values, value, group=self.control)
        return values

    def gather_to_main(self, value: T) -> list[T] | None:
        """Every rank's `value` in rank order on rank 0; None on the others."""
        if not self.active:
            return [value]
        values: list[Any] | None = [None] * self.size if self.is_main else None
        dist.gather_object(value, values, dst=0, group=self.control)
        return values

    def average_gradients(self, model: nn.Module) -> None:
        """What DDP's backward does, by hand: each gradient averaged over the ranks."""
        for parameter in model.parameters():
            if parameter.grad is not None:
                dist.all_reduce(parameter.grad)
                parameter.grad /= self.size

    def barrier(self) -> None:
        if self.active:
            dist.barrier(group=self.control)


_world = World()


def current_world() -> World:
    """The world joined by `join_world` (one inactive process before that)."""
    return _world


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def join_world(device_name: str) -> tuple[World, torch.device]:
    """The world and this process's device. Under torchrun: joins the process group
    (NCCL on CUDA, one GPU per local rank; gloo on the CPU) once, silences the console of
    ranks other than 0 (they print errors only) and leaves the group at exit."""
    global _world
    if not launched_by_torchrun():
        return _world, resolve_device(device_name)
    rank, local_rank, size = (int(os.environ[name]) for name in TORCHRUN_VARIABLES)
    device = _local_device(device_name, local_rank, size)
    if _world.active:
        return _world, device
    if device.type == "cuda":
        torch.cuda.set_device(device)
        _init_process_group("nccl", device)
        control = dist.new_group(backend="gloo")
    else:
        _init_process_group("gloo", None)
        control = None
    _world = World(rank, local_rank, size, active=True, control=control)
    console.quiet = not _world.is_main
    atexit.register(_leave)
    return _world, device


def _init_process_group(backend: str, device: torch.device | None) -> None:
    """The default process group, on torchrun's store (env://) with its keys under a
    prefix per restart: torchrun's agent keeps one store across `--max-restarts`
    attempts, and without the prefix a restarted worker can read the addresses of the
    killed attempt's processes and fail with 'connection refused' (seen with gloo)."""
    store, rank, size = next(dist.rendezvous("env://"))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.PrefixStore(f"semseg/attempt-{attempt}", store)
    dist.init_process_group(backend, store=store, rank=rank, world_size=size, device_id=device)


def _local_device(device_name: str, local_rank: int, size: int) -> torch.device:
    device = resolve_device(device_name)
    if device.type != "cuda":
        return device
    if device.index is not None and size > 1:
        raise SemsegError(
            f"config key 'train.device': {device} under torchrun with {size} processes; each "
            "process takes the GPU of its local rank: use train.device=cuda or auto"
        )
    if local_rank >= torch.cuda.device_count():
        raise SemsegError(
            f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible); "
            "start at most one process per GPU (torchrun --nproc_per_node)"
        )
    return torch.device("cuda", local_rank)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def data_parallel(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    """`module` as DistributedDataParallel under torchrun (gradients averaged over the
    ranks in backward), else as it is."""
    if not world.active:
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def sync_batch_norm(model: nn.Module, device: torch.device) -> nn.Module:
    """model.sync_bn: BatchNorm layers as SyncBatchNorm (statistics over the global batch)."""
    if device.type != "cuda":
        raise SemsegError(
            f"config key 'model.sync_bn': SyncBatchNorm needs CUDA (NCCL), and this run is on "
            f"{device.type}; set model.sync_bn=false (each process then normalises with its "
            "own batch's statistics)"
        )
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


@contextmanager
def deferred_interrupts(world: World) -> Iterator[None]:
    """Under torchrun, Ctrl-C (SIGINT) and torchrun's SIGTERM set `world.interrupted`
    instead of raising wherever each rank happens to be: the training loop agrees on it
    at the next step and every rank stops there together. A second signal acts at once."""
    if not world.active:
        yield
        return

    def defer(signum: int, frame: Any) -> None:
        if world.interrupted:
            raise KeyboardInterrupt
        world.interrupted = True

    previous = {sig: signal.signal(sig, defer) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
