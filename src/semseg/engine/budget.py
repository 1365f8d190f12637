"""Wall-clock training budgets (`train.time_budget`, e.g. 30m): the best model a given
amount of time buys. The learning-rate schedule runs on the fraction of the budget spent
instead of on a guessed number of steps."""

from __future__ import annotations

import re
import time

from semseg.errors import SemsegError

_UNITS = {"h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> float:
    """'30m', '1h30m', '90s', '2h' or plain seconds ('1800') -> seconds."""
    cleaned = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        seconds = float(cleaned)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", cleaned)
        if not parts or "".join(n + u for n, u in parts) != cleaned:
            raise SemsegError(
                f"config key 'train.time_budget': {text!r} is not a duration; "
                "write e.g. 30m, 1h30m, 90s"
            )
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise SemsegError("config key 'train.time_budget': must be more than 0 seconds")
    return seconds


class Budget:
    """Seconds of training allowed, counting what earlier (resumed) sessions spent."""

    def __init__(self, seconds: float, spent_before: float = 0.0) -> None:
        self.seconds = seconds
        self.spent_before = spent_before
        self.started = time.monotonic()

    def spent(self) -> float:
        return self.spent_before + time.monotonic() - self.started

    def progress(self) -> float:
        return min(1.0, self.spent() / self.seconds)

    def exhausted(self) -> bool:
        return self.spent() >= self.seconds
