"""semseg: semantic segmentation on PyTorch.

import semseg
result = semseg.train(semseg.load_config("configs/quickstart.yaml"))
semseg.evaluate(result.run_dir / "best.pt", split="test")
mask = semseg.load(result.run_dir / "best.pt").predict("photo.jpg")

Extending: `register_model`, `register_format`, `register_loss` and
`register_augmentation` add names that configs can use (list the module in the config's
`plugins` so the command line imports it too).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from semseg._version import __version__

# Public names -> the module defining them, imported on first use (PEP 562): the command
# line then starts without loading torch, and `import semseg` stays cheap.
_EXPORTS = {
    "ClassSet": "semseg.classes",
    "Config": "semseg.config",
    "ConfusionMatrix": "semseg.metrics",
    "DataProblem": "semseg.errors",
    "Predictor": "semseg.engine.predictor",
    "SemsegError": "semseg.errors",
    "TrainResult": "semseg.engine.train",
    "build_model": "semseg.models",
    "calibrate": "semseg.engine.calibrate",
    "check_data": "semseg.data.check",
    "convert_to_folder": "semseg.data.convert",
    "evaluate": "semseg.engine.checkpoint_eval",
    "list_models": "semseg.models",
    "load": "semseg.engine.predictor",
    "load_config": "semseg.config",
    "model_table": "semseg.engine.profile",
    "predict_folder": "semseg.engine.predict_folder",
    "preview_data": "semseg.data.preview",
    "register_augmentation": "semseg.data.augment",
    "register_format": "semseg.data.registry",
    "register_loss": "semseg.losses",
    "register_model": "semseg.models",
    "score": "semseg.engine.score",
    "train": "semseg.engine.train",
}

__all__ = [
    "ClassSet",
    "Config",
    "ConfusionMatrix",
    "DataProblem",
    "Predictor",
    "SemsegError",
    "TrainResult",
    "__version__",
    "build_model",
    "calibrate",
    "check_data",
    "convert_to_folder",
    "evaluate",
    "list_models",
    "load",
    "load_config",
    "model_table",
    "predict_folder",
    "preview_data",
    "register_augmentation",
    "register_format",
    "register_loss",
    "register_model",
    "score",
    "train",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'semseg' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # what the names are, for type checkers and IDEs
    from semseg.classes import ClassSet
    from semseg.config import Config, load_config
    from semseg.data.augment import register_augmentation
    from semseg.data.check import check_data
    from semseg.data.convert import convert_to_folder
    from semseg.data.preview import preview_data
    from semseg.data.registry import register_format
    from semseg.engine.calibrate import calibrate
    from semseg.engine.checkpoint_eval import evaluate
    from semseg.engine.predict_folder import predict_folder
    from semseg.engine.predictor import Predictor, load
    from semseg.engine.profile import model_table
    from semseg.engine.score import score
    from semseg.engine.train import TrainResult, train
    from semseg.errors import DataProblem, SemsegError
    from semseg.losses import register_loss
    from semseg.metrics import ConfusionMatrix
    from semseg.models import build_model, list_models, register_model
