"""Segmentation models behind one registry; importing this package registers them all."""

from semseg.models import unet  # noqa: F401  (registers the U-Net variants)
from semseg.models.base import SegmentationModel
from semseg.models.registry import build_model, list_models, register_model

__all__ = ["SegmentationModel", "build_model", "list_models", "register_model"]
