"""The "NAME KEY=VALUE ..." variant specs that the comparison scripts take."""

from __future__ import annotations

import re

# A new override starts where whitespace precedes `dotted.key=`; other spaces belong to
# a value (`loss.terms=[{name: ce}, {name: dice, weight: 0.5}]`).
_NEXT_OVERRIDE = re.compile(r"\s+(?=[\w.]+=)")


def parse_variant(spec: str) -> tuple[str, list[str]]:
    """'dice loss.terms=[{name: ce}, {name: dice}] train.seed=1' ->
    ('dice', ['loss.terms=[{name: ce}, {name: dice}]', 'train.seed=1'])."""
    name, _, rest = spec.strip().partition(" ")
    return name, [item for item in _NEXT_OVERRIDE.split(rest.strip()) if item]
