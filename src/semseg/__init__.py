"""semseg: semantic segmentation on PyTorch.

import semseg
predictor = semseg.load("runs/shapes-unet_small/best.pt")
mask = predictor.predict("photo.jpg")
"""

__version__ = "0.1.0"

from semseg.classes import ClassSet  # noqa: E402
from semseg.config import Config, load_config  # noqa: E402
from semseg.engine.predictor import Predictor, load  # noqa: E402
from semseg.engine.train import TrainResult, train  # noqa: E402
from semseg.errors import SemsegError  # noqa: E402
from semseg.metrics import ConfusionMatrix  # noqa: E402
from semseg.models import build_model, list_models, register_model  # noqa: E402

__all__ = [
    "ClassSet",
    "Config",
    "ConfusionMatrix",
    "Predictor",
    "SemsegError",
    "TrainResult",
    "__version__",
    "build_model",
    "list_models",
    "load",
    "load_config",
    "register_model",
    "train",
]
