"""Shareable model folders, in the Hugging Face Hub layout (as segmentation_models_pytorch
publishes): `model.safetensors` (the weights), `config.json` (architecture, classes,
palette, the resolved training config with its input normalisation, metrics, class
bias) and `README.md` (the model card). Loading one reads JSON and safetensors only: no
pickle runs. `huggingface_hub.upload_folder` publishes such a folder as it is, and
`semseg.load("hf://OWNER/NAME")` fetches one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from semseg._version import __version__
from semseg.classes import ClassSet
from semseg.config import validate_config
from semseg.deploy.card import model_card
from semseg.engine.bundle import ModelBundle, bundle_from_payload
from semseg.engine.checkpoint import load_checkpoint, model_from_checkpoint
from semseg.errors import SemsegError
from semseg.files import atomic_write, check_output_folder, write_json, write_text_atomic

FOLDER_FORMAT = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def export_folder(checkpoint: Path | str, out: Path | str, licence: str = "other") -> Path:
    """Write the model folder of a checkpoint.

    Args:
        checkpoint: a semseg checkpoint, e.g. runs/NAME/best.pt.
        out: the folder to create (it must not hold anything yet).
        licence: the model card's licence field (an SPDX id such as apache-2.0).

    Returns:
        The folder.

    Raises:
        SemsegError: an unreadable checkpoint, or an unusable or non-empty `out`.
    """
    out = check_output_folder(out, "--out")
    if out.exists() and any(out.iterdir()):
        raise SemsegError(f"{out}: folder exists and is not empty; choose a new --out")
    payload = load_checkpoint(checkpoint)
    bundle = bundle_from_payload(payload, checkpoint)
    _save_weights(out / WEIGHTS_FILE, payload["state_dict"])
    description = {
        "semseg_model_folder": FOLDER_FORMAT,
        "semseg_version": __version__,
        "model": payload["model"],
        "classes": bundle.classes.to_dict(),
        "config": bundle.config.to_plain(),
        "info": bundle.info,
        "licence": licence,
    }
    write_json(out / CONFIG_FILE, description)
    write_text_atomic(out / "README.md", model_card(bundle, payload["model"], licence))
    return out


def _save_weights(path: Path, state_dict: dict[str, torch.Tensor]) -> None:
    safetensors_torch = _safetensors()
    # safetensors stores each tensor once and contiguous (no shared storage).
    tensors = {key: value.detach().cpu().contiguous().clone() for key, value in state_dict.items()}
    atomic_write(path, lambda file: file.write(safetensors_torch.save(tensors)))


def load_folder(path: Path | str, source: str | None = None) -> ModelBundle:
    """A model folder as a bundle.

    Raises:
        SemsegError: a missing or malformed config.json or weights file.
    """
    path = Path(path)
    description = _read_description(path / CONFIG_FILE)
    config = validate_config(description["config"])  # imports the config's plugins
    classes = ClassSet.from_dict(description["classes"], source=str(path / CONFIG_FILE))
    info = dict(description.get("info") or {})
    payload = {
        "model": description["model"],
        "state_dict": _load_weights(path / WEIGHTS_FILE),
        "class_bias": info.get("class_bias"),
    }
    model = model_from_checkpoint(payload, path / WEIGHTS_FILE)
    return ModelBundle(model, classes, config, source or str(path), "folder", info)


def _read_description(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SemsegError(
            f"{path.parent}: not a semseg model folder (no {CONFIG_FILE}); write one with "
            "'semseg export CHECKPOINT --format folder --out FOLDER'"
        )
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SemsegError(
            f"{path}: unreadable ({type(err).__name__}); export the folder again"
        ) from None
    required = ("semseg_model_folder", "model", "classes", "config")
    if not isinstance(description, dict) or not all(key in description for key in required):
        raise SemsegError(f"{path}: not a semseg model description (needs {', '.join(required)})")
    if description["semseg_model_folder"] > FOLDER_FORMAT:
        raise SemsegError(f"{path}: written by a newer semseg; upgrade semseg")
    return description


def _load_weights(path: Path) -> dict[str, torch.Tensor]:
    safetensors_torch = _safetensors()
    if not path.is_file():
        raise SemsegError(f"{path}: weights file missing from the model folder")
    try:
        return safetensors_torch.load_file(str(path))
    except Exception as err:  # a damaged or foreign file: safetensors parses, never unpickles
        raise SemsegError(
            f"{path}: not a safetensors file ({type(err).__name__}: {str(err)[:80]})"
        ) from None


def _safetensors():
    try:
        import safetensors.torch
    except ImportError:
        raise SemsegError("model folders need safetensors: pip install safetensors") from None
    return safetensors.torch
