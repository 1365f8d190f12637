"""Losses: pure functions in a registry, plus the modules that bind their settings.

Every loss takes logits N x C x H x W and int64 targets N x H x W, gives pixels at
`ignore_index` exactly zero weight and zero gradient, and works for two or many classes.
Region losses (Dice, Tversky, Lovász) average over the classes present in the batch's
ground truth, so a perfect prediction scores 0 and absent classes do not count.
`loss.terms` combines several with weights; the combination reports each term.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from semseg.classes import ClassSet
from semseg.config import LossConfig
from semseg.data.stats import smoothed_prior
from semseg.errors import SemsegError
from semseg.registry import Registry

# ---------------------------------------------------------------- functional forms


def _soft_confusion_sums(logits: torch.Tensor, target: torch.Tensor, ignore_index: int):
    """Per class, over the valid pixels of the batch: soft true positives (the softmax
    probability of the true class, summed where that class is the label), the summed
    probability of the class, and the labelled pixel count. Sums by label index rather
    than through an N x C x H x W one-hot tensor: a sixth of the time on a CPU."""
    num_classes = logits.shape[1]
    valid = target != ignore_index
    safe = torch.where(valid, target, 0)
    probs = logits.softmax(1)
    true_class_prob = probs.gather(1, safe.unsqueeze(1)).squeeze(1) * valid
    labels = safe.flatten()
    tp = probs.new_zeros(num_classes).scatter_add(0, labels, true_class_prob.flatten())
    prob_sum = (probs * valid.unsqueeze(1)).sum((0, 2, 3))
    count = torch.bincount(labels[valid.flatten()], minlength=num_classes).to(probs.dtype)
    return tp, prob_sum, count


def _class_mean(per_class: torch.Tensor, present: torch.Tensor, weights: torch.Tensor | None):
    """Mean over classes present in the ground truth (weighted if `weights`)."""
    w = present.to(per_class.dtype)
    if weights is not None:
        w = w * weights
    return (per_class * w).sum() / w.sum().clamp(min=1e-12)


LossFunction = Callable[..., torch.Tensor]

LOSSES: Registry[LossFunction] = Registry("loss", "loss.name")


def register_loss(name: str | LossFunction | None = None, aliases: tuple[str, ...] = ()) -> Any:
    """Decorator registering a loss function, so that configs can name it (`loss.name`,
    `loss.terms`).

    The function takes `logits` (N x C x H x W, float32) and `target` (N x H x W, int64),
    the keywords `ignore_index` (pixels that must get zero weight and zero gradient) and
    `weights` (C class weights or None), then its own parameters, which `loss.terms`
    entries set by name (`{name: mine, margin: 0.5, weight: 0.3}`); it returns a scalar.

    Raises:
        RuntimeError: the name (or an alias) is taken.
    """
    return LOSSES.register(name, aliases=aliases)


# Parameters SegmentationLoss passes itself; the rest are config keys.
_BUILT_IN = ("logits", "target", "ignore_index", "weights")


@register_loss("cross_entropy", aliases=("ce",))
def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = 255,
    weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Mean over valid pixels (weighted mean with class weights), as torch's "mean", but
    0 rather than NaN when every pixel is ignored, and with no host sync."""
    total = F.cross_entropy(
        logits,
        target,
        weight=weights,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        reduction="sum",
    )
    valid = target != ignore_index
    if weights is None:
        denominator = valid.sum()
    else:
        denominator = (weights[torch.where(valid, target, 0)] * valid).sum()
    return total / denominator.clamp(min=1e-12)


@register_loss("ohem")
def ohem_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = 255,
    weights: torch.Tensor | None = None,
    threshold: float = 0.7,
    min_kept: int = 100_000,
) -> torch.Tensor:
    """Online hard example mining: cross-entropy over the pixels whose true-class
    probability is below `threshold`, or over the `min_kept` hardest valid pixels if
    fewer are that hard (Wu et al. 2016, as in HRNet / mmseg)."""
    pixel_loss = F.cross_entropy(
        logits, target, weight=weights, ignore_index=ignore_index, reduction="none"
    ).flatten()
    valid = (target != ignore_index).flatten()
    hard = valid & (pixel_loss > -torch.log(torch.tensor(threshold, device=logits.device)))
    kept = min(min_kept, int(valid.sum()))  # one sync per step: k for top-k must be known
    ranked = torch.where(valid, pixel_loss, torch.full_like(pixel_loss, -1.0))
    if kept > 0:
        floor = ranked.topk(kept).values[-1]
        hard = hard | (valid & (ranked >= floor))
    return (pixel_loss * hard).sum() / hard.sum().clamp(min=1)


@register_loss("dice")
def dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = 255,
    weights: torch.Tensor | None = None,
    smooth: float = 1e-6,
) -> torch.Tensor:
    """1 - soft Dice (softmax), per class over the whole batch (Milletari et al. 2016):
    the Tversky loss with alpha = beta = 0.5, as 2 TP / (2 TP + FP + FN)."""
    return tversky_loss(logits, target, ignore_index, weights, 0.5, 0.5, smooth / 2)


@register_loss("tversky")
def tversky_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = 255,
    weights: torch.Tensor | None = None,
    alpha: float = 0.3,
    beta: float = 0.7,
    smooth: float = 1e-6,
) -> torch.Tensor:
    """1 - Tversky index TP / (TP + alpha FP + beta FN) (Salehi et al. 2017); beta > alpha
    weighs missed pixels more, for recall on small classes. alpha = beta = 0.5 is Dice."""
    tp, prob_sum, count = _soft_confusion_sums(logits, target, ignore_index)
    fp, fn = prob_sum - tp, count - tp
    index = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)
    return _class_mean(1 - index, count > 0, weights)


@register_loss("focal")
def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = 255,
    weights: torch.Tensor | None = None,
    gamma: float = 2.0,
) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): -alpha_t (1 - p_t)^gamma log p_t, mean over valid
    pixels; class weights play alpha_t."""
    valid = target != ignore_index
    safe = torch.where(valid, target, 0)
    log_p = logits.log_softmax(1).gather(1, safe.unsqueeze(1)).squeeze(1)  # log p_t
    loss = -((1 - log_p.exp()) ** gamma) * log_p
    if weights is not None:
        loss = loss * weights[safe]
    return (loss * valid).sum() / valid.sum().clamp(min=1)


def _lovasz_gradient(sorted_truth: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss (Berman et al. 2018, Alg. 1)."""
    positives = sorted_truth.sum()
    intersection = positives - sorted_truth.cumsum(0)
    union = positives + (1 - sorted_truth).cumsum(0)
    jaccard = 1 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


@register_loss("lovasz")
def lovasz_softmax(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = 255,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Lovász-softmax (Berman et al. 2018): a convex surrogate of 1 - IoU per class,
    over the batch's valid pixels, averaged over the classes present."""
    probs = logits.softmax(1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    labels = target.reshape(-1)
    valid = labels != ignore_index
    probs, labels = probs[valid], labels[valid]
    losses, present = [], []
    for c in range(logits.shape[1]):
        truth = (labels == c).to(probs.dtype)
        errors = (truth - probs[:, c]).abs()
        errors_sorted, order = errors.sort(descending=True)
        losses.append(errors_sorted @ _lovasz_gradient(truth[order]))
        present.append(truth.sum() > 0)
    if not losses or probs.numel() == 0:
        return logits.sum() * 0.0
    return _class_mean(torch.stack(losses), torch.stack(present), weights)


def boundary_weights(
    target: torch.Tensor, ignore_index: int, num_classes: int, radius: int
) -> torch.Tensor:
    """1 for pixels within `radius` of a change of (valid) label, else 0; N x H x W."""
    valid = target != ignore_index
    one_hot = F.one_hot(torch.where(valid, target, 0), num_classes).permute(0, 3, 1, 2)
    one_hot = (one_hot * valid.unsqueeze(1)).float()
    window = 2 * radius + 1
    nearby = F.max_pool2d(one_hot, window, stride=1, padding=radius)  # classes in the window
    return (nearby.sum(1) > 1).to(target.dtype) * valid


@register_loss("boundary")
def boundary_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = 255,
    weights: torch.Tensor | None = None,
    boundary_weight: float = 4.0,
    radius: int = 2,
) -> torch.Tensor:
    """Boundary-aware cross-entropy: pixels within `radius` of a class boundary count
    (1 + boundary_weight) times, so thin structures and object edges are not drowned by
    region interiors."""
    pixel_loss = F.cross_entropy(
        logits, target, weight=weights, ignore_index=ignore_index, reduction="none"
    )
    near = boundary_weights(target, ignore_index, logits.shape[1], radius)
    emphasis = (1 + boundary_weight * near) * (target != ignore_index)
    return (pixel_loss * emphasis).sum() / emphasis.sum().clamp(min=1e-12)


# ---------------------------------------------------------------- modules and registry


class SegmentationLoss(nn.Module):
    """A loss function bound to its ignore index, class weights and parameters."""

    def __init__(
        self,
        function: Callable[..., torch.Tensor],
        ignore_index: int,
        class_weights: torch.Tensor | None,
        **params: Any,
    ) -> None:
        super().__init__()
        self.function = function
        self.ignore_index = ignore_index
        self.params = params
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.function(
            logits.float(),
            target,
            ignore_index=self.ignore_index,
            weights=self.class_weights,
            **self.params,
        )


class CombinedLoss(nn.Module):
    """Sum of weighted terms; `last_terms` keeps each term's value of the last call
    (detached tensors, so logging them costs no host sync). `logit_offsets` (C values),
    when given, are added to the logits every term scores (logit adjustment)."""

    def __init__(
        self,
        terms: list[tuple[str, float, nn.Module]],
        logit_offsets: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.names = [name for name, _, _ in terms]
        self.weights = [weight for _, weight, _ in terms]
        self.losses = nn.ModuleList(loss for _, _, loss in terms)
        self.register_buffer("logit_offsets", logit_offsets, persistent=False)
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.logit_offsets is not None:
            logits = logits.float() + self.logit_offsets.view(1, -1, 1, 1)
        total = logits.new_zeros((), dtype=torch.float32)
        terms = {}
        for name, weight, loss in zip(self.names, self.weights, self.losses, strict=True):
            value = loss(logits, target)
            terms[name] = value.detach()
            total = total + weight * value
        self.last_terms = terms
        return total


def build_loss(
    config: LossConfig,
    classes: ClassSet,
    class_weights: list[float] | None = None,
    class_pixels: list[int] | None = None,
) -> CombinedLoss:
    """The configured loss; `class_weights` (e.g. resolved from `auto`) overrides the
    config's list; `class_pixels` (the training split's labelled pixels per class) gives
    the prior of `loss.logit_adjustment`."""
    weights = _class_weights(class_weights or config.class_weights, classes)
    terms = []
    for index, term in enumerate(config.resolved_terms()):
        key = f"loss.terms[{index}]" if config.terms else "loss"
        loss = LOSSES.get(term.name, key=f"{key}.name")
        params = term.params()
        LOSSES.check_parameters(loss.name, params, key, reserved=_BUILT_IN)
        term_weights = weights if term.class_weights else None
        module = SegmentationLoss(loss.function, classes.ignore_index, term_weights, **params)
        terms.append((loss.name, term.weight, module))
    return CombinedLoss(terms, _logit_offsets(config.logit_adjustment, class_pixels, classes))


def _logit_offsets(
    strength: float, class_pixels: list[int] | None, classes: ClassSet
) -> torch.Tensor | None:
    """tau x log(prior): softmax(logits + log prior) fits the labels' posterior, so the
    logits themselves fit it divided by the prior, the class-balanced one. The same
    optimum as weighting each pixel by 1 / prior, without scaling a rare class's pixel
    gradients by that weight (60x a road pixel's on CamVid)."""
    if not strength:
        return None
    if class_pixels is None:
        raise ValueError("loss.logit_adjustment needs the training split's class pixels")
    if len(class_pixels) != classes.num_classes:
        raise ValueError(f"{len(class_pixels)} class pixel counts for {classes.num_classes}")
    return (strength * smoothed_prior(class_pixels).log()).float()


def _class_weights(values: list[float] | str | None, classes: ClassSet) -> torch.Tensor | None:
    if values is None:
        return None
    if values == "auto":
        raise ValueError("class_weights=auto must be resolved from dataset statistics first")
    if len(values) != classes.num_classes:
        raise SemsegError(
            f"config key 'loss.class_weights': {len(values)} weights for "
            f"{classes.num_classes} classes ({', '.join(classes.names)}); give one per class"
        )
    if any(w < 0 for w in values) or not any(w > 0 for w in values):
        raise SemsegError("config key 'loss.class_weights': weights must be >= 0, not all 0")
    return torch.tensor(values, dtype=torch.float32)
