import pytest
import torch
import torch.nn.functional as F

from semseg.classes import ClassSet
from semseg.config import LossConfig
from semseg.errors import SemsegError
from semseg.losses import CrossEntropyLoss, build_loss
from semseg.models import build_model, register_model


def test_unet_widths_follow_the_paper() -> None:
    parameters = sum(p.numel() for p in build_model("unet", num_classes=2).parameters())
    assert 30e6 < parameters < 32e6  # the paper's 64..1024-channel U-Net
    small = build_model("unet_small", num_classes=2)
    assert small.down[0][0][0].out_channels == 16 and small.size_divisor == 16


def test_registry_rejects_duplicates_and_lists_names() -> None:
    with pytest.raises(RuntimeError, match="already registered"):
        register_model(build_model.__globals__["_MODELS"]["unet"])
    with pytest.raises(SemsegError, match="unknown model 'unnet'; available: .*unet"):
        build_model("unnet", num_classes=2)


def test_cross_entropy_matches_torch_and_ignores_pixels() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, requires_grad=True)
    target = torch.randint(0, 4, (2, 5, 6))
    target[0, :2] = 255
    weights = torch.tensor([0.5, 1.0, 2.0, 0.0])
    for kwargs in ({}, {"class_weights": weights}, {"label_smoothing": 0.1}):
        ours = CrossEntropyLoss(**kwargs)(logits, target)
        reference = F.cross_entropy(
            logits,
            target,
            weight=kwargs.get("class_weights"),
            ignore_index=255,
            label_smoothing=kwargs.get("label_smoothing", 0.0),
        )
        assert torch.allclose(ours, reference)
    CrossEntropyLoss(class_weights=weights)(logits, target).backward()
    assert logits.grad[0, :, :2].abs().sum() == 0  # ignored pixels get no gradient
    assert logits.grad[0, :, 2:].abs().sum() > 0


def test_cross_entropy_edge_values() -> None:
    target = torch.tensor([[[0, 1], [1, 0]]])
    perfect = F.one_hot(target, 2).permute(0, 3, 1, 2).float() * 50
    assert CrossEntropyLoss()(perfect, target) < 1e-6
    uniform = torch.zeros(1, 2, 2, 2)
    assert CrossEntropyLoss()(uniform, target).item() == pytest.approx(torch.log(torch.tensor(2.0)))
    all_ignored = CrossEntropyLoss()(uniform, torch.full((1, 2, 2), 255))
    assert all_ignored.item() == 0.0


def test_loss_config_is_checked_against_the_classes() -> None:
    classes = ClassSet(("a", "b", "c"))
    with pytest.raises(SemsegError, match="2 weights for 3 classes"):
        build_loss(LossConfig(class_weights=[1, 2]), classes)
    with pytest.raises(SemsegError, match="unknown loss 'dice'"):
        build_loss(LossConfig(name="dice"), classes)
    loss = build_loss(LossConfig(class_weights=[1, 2, 3], label_smoothing=0.1), classes)
    assert loss.ignore_index == 255 and loss.class_weights.tolist() == [1, 2, 3]
