"""Segmentation models behind one registry; importing this package registers them all."""

# Importing the architecture modules registers their builders.
from semseg.models import deeplab, fcn, fpn, lraspp, segformer, segnet, unet  # noqa: F401
from semseg.models.base import SegmentationModel
from semseg.models.registry import build_model, list_models, register_model

__all__ = ["SegmentationModel", "build_model", "list_models", "register_model"]
