"""CRF refinement of predictions (`eval.crf=true`), as DeepLab v1/v2 used a dense CRF:
mean-field inference of a CRF with a Potts model over the pixels, its pairwise kernels

    appearance  w_a exp(-|p_i - p_j|^2 / 2 theta_xy^2 - |I_i - I_j|^2 / 2 theta_rgb^2)
    smoothness  w_s exp(-|p_i - p_j|^2 / 2 theta_s^2)

restricted to a local window around each pixel: the ConvCRF of Teichmann and Cipolla
(2019), in plain torch at full resolution, no permutohedral lattice. Each iteration
adds to every class's unary log-probabilities the kernel-weighted probabilities of that
class at the window's other pixels (the Potts update up to a per-pixel constant) and
normalises again. Parameters default to ConvCRF's; the window (7 px) bounds how far the
appearance kernel reaches, so theta_xy larger than the window acts as "the window".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CRFSettings:
    iterations: int = 5
    window: int = 7  # pixels on a side, odd
    appearance_weight: float = 10.0
    appearance_xy: float = 80.0  # theta, pixels
    appearance_rgb: float = 13.0  # theta, 0..255 intensities
    smoothness_weight: float = 3.0
    smoothness_xy: float = 3.0

    def describe(self) -> str:
        return f"CRF ({self.iterations} iterations, {self.window}x{self.window} window)"


def crf_refine(scores: torch.Tensor, images: torch.Tensor, settings: CRFSettings) -> torch.Tensor:
    """N x C x H x W scores (logits or log-probabilities) and the N x 3 x H x W images in
    0..255 -> N x C x H x W log-probabilities after mean-field inference."""
    unary = scores.float().log_softmax(1)
    kernels = list(_kernels(images.float(), settings))
    refined = unary
    for _ in range(settings.iterations):
        q = refined.exp()
        message = torch.zeros_like(q)
        for (dy, dx), kernel in kernels:
            message += kernel * _shifted(q, dy, dx)
        refined = (unary + message).log_softmax(1)
    return refined


def _kernels(images: torch.Tensor, settings: CRFSettings):
    """((dy, dx), N x 1 x H x W weight) for every offset of the window but the centre;
    0 where the neighbour lies outside the image."""
    radius = settings.window // 2
    inside = torch.ones_like(images[:, :1])
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy == dx == 0:
                continue
            distance = float(dy * dy + dx * dx)
            colour = (images - _shifted(images, dy, dx)).square().sum(1, keepdim=True)
            appearance = settings.appearance_weight * torch.exp(
                -distance / (2 * settings.appearance_xy**2)
                - colour / (2 * settings.appearance_rgb**2)
            )
            smoothness = settings.smoothness_weight * torch.exp(
                torch.tensor(-distance / (2 * settings.smoothness_xy**2))
            )
            yield (dy, dx), (appearance + smoothness) * _shifted(inside, dy, dx)


def _shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """y[..., i, j] = x[..., i + dy, j + dx], zero outside the map."""
    height, width = x.shape[-2:]
    radius = max(abs(dy), abs(dx))
    padded = F.pad(x, (radius, radius, radius, radius))
    return padded[..., radius + dy : radius + dy + height, radius + dx : radius + dx + width]
