"""Wall-clock training budgets (`train.time_budget`, e.g. 30m): the best model a given
amount of time buys. The learning-rate schedule runs on the fraction of the budget spent
instead of on a guessed number of steps."""

from __future__ import annotations

import time
from collections.abc import Callable


class Budget:
    """Seconds of training allowed, counting what earlier (resumed) sessions spent.
    `agree` turns this process's reading into the one every process uses (under
    torchrun: the largest; every process must then read the budget at the same points)."""

    def __init__(
        self,
        seconds: float,
        spent_before: float = 0.0,
        agree: Callable[[float], float] = lambda seconds: seconds,
    ) -> None:
        self.seconds = seconds
        self.spent_before = spent_before
        self.agree = agree
        self.started = time.monotonic()

    def spent(self) -> float:
        return self.agree(self.spent_before + time.monotonic() - self.started)

    def progress(self) -> float:
        return min(1.0, self.spent() / self.seconds)

    def exhausted(self) -> bool:
        return self.spent() >= self.seconds
