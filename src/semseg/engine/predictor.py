"""Prediction from a model file alone: `semseg.load(path).predict(image)`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from semseg.classes import ClassSet
from semseg.config import Config
from semseg.data.io import DEFAULT_MAX_PIXELS, read_image
from semseg.data.transforms import eval_preset
from semseg.deploy.sources import load_model
from semseg.engine.inference import InferenceSettings, predict_logits
from semseg.engine.runtime import resolve_device
from semseg.errors import SemsegError

ImageInput = str | Path | Image.Image | np.ndarray


class Predictor:
    """A trained model with its classes, preprocessing and inference mode (the
    checkpoint's eval settings unless `inference` is given)."""

    def __init__(
        self,
        model: torch.nn.Module,
        classes: ClassSet,
        config: Config,
        device: torch.device,
        inference: InferenceSettings | None = None,
    ) -> None:
        self.model = model.to(device).eval().to(memory_format=torch.channels_last)
        self.classes = classes
        self.config = config
        self.device = device
        self.inference = inference or InferenceSettings.from_config(
            config.eval, device, config.data.normalization()
        )
        self._preprocess = eval_preset(config.data)

    def predict(
        self, image: ImageInput, return_probs: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predict one image with the checkpoint's preprocessing and inference settings.

        Args:
            image: a file path, a PIL image, or an H x W x 3 (or 4, or H x W gray) uint8
                array in RGB order.
            return_probs: also return the class probabilities.

        Returns:
            The H x W int64 class index mask, at the image's own size; with
            `return_probs`, also the C x H x W float32 softmax probabilities (of the
            averaged log-probabilities under test-time augmentation).

        Raises:
            SemsegError: an unreadable file, or an array of the wrong shape or type.
        """
        batch = self._normalised(image).unsqueeze(0).to(self.device)
        logits = predict_logits(self.model, batch, self.inference)[0]
        mask = logits.argmax(0).cpu().numpy().astype(np.int64)
        if return_probs:
            return mask, logits.softmax(0).float().cpu().numpy()
        return mask

    def predict_batch(self, images: list[ImageInput]) -> list[np.ndarray]:
        """Masks of several images of one size in one forward pass (what a server does
        with concurrent requests when batches are faster on the hardware).

        Raises:
            SemsegError: as `predict`, or images of different sizes.
        """
        normalised = [self._normalised(image) for image in images]
        if len({tuple(tensor.shape) for tensor in normalised}) > 1:
            raise SemsegError("predict_batch needs images of one size; predict them one by one")
        logits = predict_logits(self.model, torch.stack(normalised).to(self.device), self.inference)
        return list(logits.argmax(1).cpu().numpy().astype(np.int64))

    def _normalised(self, image: ImageInput) -> torch.Tensor:
        data = self.config.data
        pixels = to_image_tensor(image, data.image_mode == "gray", data.max_pixels)
        dummy_mask = torch.zeros(pixels.shape[1:], dtype=torch.uint8)
        return self._preprocess(pixels, dummy_mask)[0]  # C x H x W


def to_image_tensor(
    image: ImageInput, gray: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS
) -> torch.Tensor:
    """A path, PIL image or H x W (x 3|4) uint8 array -> uint8 3 x H x W (RGB), or
    1 x H x W with `gray`; more than `max_pixels` pixels are refused."""
    if isinstance(image, (str, Path)):
        return read_image(Path(image), gray=gray, max_pixels=max_pixels)
    if isinstance(image, Image.Image):
        _check_pixels(image.width, image.height, max_pixels)
        image = np.array(ImageOps.exif_transpose(image).convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise SemsegError(
            f"cannot predict on {type(image).__name__}: pass a path, PIL image "
            "or H x W x 3 uint8 array"
        )
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise SemsegError(f"image array has shape {image.shape}; expected H x W x 3 (RGB)")
    if image.dtype != np.uint8:
        raise SemsegError(f"image array is {image.dtype}; expected uint8 values 0..255")
    _check_pixels(image.shape[1], image.shape[0], max_pixels)
    rgb = torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1)
    if gray:  # ITU-R 601 luma, as PIL's convert("L")
        weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        return (rgb.float() * weights).sum(0, keepdim=True).round().to(torch.uint8)
    return rgb


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise SemsegError(
            f"image is {width}x{height} = {width * height:,} pixels, over data.max_pixels "
            f"({max_pixels:,}); downscale it, or raise data.max_pixels"
        )


def load(
    path: str | Path,
    device: str | torch.device | None = None,
    inference: InferenceSettings | None = None,
) -> Predictor:
    """Load a model for prediction: the file (or folder) alone is enough.

    Args:
        path: a checkpoint (runs/NAME/best.pt), a model folder, an ONNX file written by
            `semseg export`, or hf://OWNER/NAME (a model folder on the Hugging Face Hub).
        device: cpu, cuda, cuda:1, ...; default: CUDA when available, else the CPU.
        inference: settings replacing the checkpoint's eval.* ones, e.g.
            `InferenceSettings(mode="slide", crop=(512, 512), flip=True)`.

    Returns:
        A Predictor holding the model (class bias applied), its classes, the resolved
        config (input normalisation included) and the inference settings.

    Raises:
        SemsegError: a missing, foreign or damaged model, or an unavailable device.
    """
    bundle = load_model(path)
    target = resolve_device(str(device)) if device is not None else resolve_device("auto")
    inference = inference or bundle.inference_settings(bundle.config.eval, target)
    return Predictor(bundle.model, bundle.classes, bundle.config, target, inference)
