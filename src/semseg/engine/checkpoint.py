"""Checkpoints: a dict of tensors and plain data, written atomically, loaded safely.

A checkpoint alone rebuilds the model (registry name + options), its classes and the
preprocessing (the resolved config), so eval and predict need nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from semseg.classes import ClassSet
from semseg.config import Config, validate_config
from semseg.errors import SemsegError
from semseg.files import atomic_write
from semseg.models import build_model
from semseg.plugins import import_plugins

# 2: the auxiliary head's weights are named `aux_head.*` (were `aux.*`).
CHECKPOINT_FORMAT = 2
_FORMAT_KEY = "semseg_checkpoint"


def model_record(config: Config, num_classes: int, in_channels: int = 3) -> dict[str, Any]:
    """What `build_model` needs to rebuild the architecture; never `pretrained`: the
    weights are in the checkpoint, and rebuilding must not download anything."""
    options = config.model.builder_options()
    options.pop("pretrained")
    return {
        "name": config.model.name,
        "num_classes": num_classes,
        "in_channels": in_channels,
        "options": options,
    }


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (semseg.files.atomic_write): a crash or a full disk leaves the
    previous file intact, and the error says so."""
    path = Path(path)
    payload = {_FORMAT_KEY: CHECKPOINT_FORMAT, **payload}
    kept = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
    atomic_write(path, lambda file: torch.save(payload, file), after=kept)


def load_checkpoint(path: Path | str, map_location: Any = "cpu") -> dict[str, Any]:
    """The checkpoint's payload, loaded with `weights_only=True` (no code runs), upgraded
    to the current format, with the plugins its config names imported.

    Raises:
        SemsegError: missing, unreadable, foreign or too new a file.
    """
    path = Path(path)
    if not path.is_file():
        raise SemsegError(f"{path}: checkpoint not found; pass a file such as runs/NAME/best.pt")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for foreign or damaged files
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise SemsegError(
            f"{path}: not a readable checkpoint ({reason}); pass a .pt file written by semseg"
        ) from None
    if not isinstance(payload, dict) or _FORMAT_KEY not in payload:
        raise SemsegError(
            f"{path}: not a semseg checkpoint (no '{_FORMAT_KEY}' entry); pass runs/NAME/best.pt "
            "or last.pt from 'semseg train'"
        )
    if payload[_FORMAT_KEY] > CHECKPOINT_FORMAT:
        raise SemsegError(
            f"{path}: checkpoint format {payload[_FORMAT_KEY]} is newer than this semseg "
            f"understands ({CHECKPOINT_FORMAT}); upgrade semseg"
        )
    import_plugins(payload["config"].get("plugins", []))
    return _upgraded(payload)


def _upgraded(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload in the current format (older files stay loadable)."""
    if payload[_FORMAT_KEY] < 2:
        weights = {
            key: payload[key] for key in ("state_dict", "train_state_dict") if key in payload
        }
        renamed = {
            key: {_aux_head_name(name): tensor for name, tensor in state.items()}
            for key, state in weights.items()
        }
        payload = payload | renamed | {_FORMAT_KEY: 2}
    return payload


def _aux_head_name(name: str) -> str:
    return "aux_head." + name.removeprefix("aux.") if name.startswith("aux.") else name


def checkpoint_config(payload: dict[str, Any]) -> Config:
    return validate_config(payload["config"])


def checkpoint_classes(payload: dict[str, Any]) -> ClassSet:
    return ClassSet.from_dict(payload["classes"], source="checkpoint classes")


def model_from_checkpoint(payload: dict[str, Any], path: Path | str = "checkpoint") -> nn.Module:
    record = payload["model"]
    model = build_model(
        record["name"], record["num_classes"], record["in_channels"], **record["options"]
    )
    own = model.state_dict()
    given = payload["state_dict"]
    missing = [key for key in own if key not in given]
    unexpected = [key for key in given if key not in own]
    misshaped = [k for k in own if k in given and given[k].shape != own[k].shape]
    if missing or unexpected or misshaped:
        problems = [
            f"{len(keys)} {what} (e.g. {', '.join(keys[:2])})"
            for keys, what in (
                (missing, "missing"),
                (unexpected, "unexpected"),
                (misshaped, "mis-shaped"),
            )
            if keys
        ]
        raise SemsegError(
            f"{path}: weights do not fit model {record['name']!r} ({'; '.join(problems)}); "
            "the file may be damaged or from an incompatible semseg version"
        )
    model.load_state_dict(given)
    if payload.get("class_bias") is not None:
        model.set_class_bias(torch.tensor(payload["class_bias"]))
    return model
