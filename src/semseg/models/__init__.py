"""Segmentation models behind one registry; importing this package registers them all."""

# Importing the architecture modules registers their builders.
from semseg.models import (  # noqa: F401
    bisenet,
    deeplab,
    dfanet,
    espnet,
    fast_scnn,
    fcn,
    fpn,
    liteseg,
    lraspp,
    pspnet,
    segformer,
    segnet,
    setr,
    swin_unet,
    transunet,
    unet,
    upernet,
)
from semseg.models.base import SegmentationModel
from semseg.models.registry import build_model, list_models, register_model

__all__ = ["SegmentationModel", "build_model", "list_models", "register_model"]
