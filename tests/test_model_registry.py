import pytest

from semseg.errors import SemsegError
from semseg.models import build_model, register_model
from semseg.models.registry import MODELS


def test_unet_widths_follow_the_paper() -> None:
    parameters = sum(p.numel() for p in build_model("unet", num_classes=2).parameters())
    assert 30e6 < parameters < 32e6  # the paper's 64..1024-channel U-Net
    small = build_model("unet_small", num_classes=2)
    assert small.down[0][0][0].out_channels == 16 and small.size_divisor == 16


def test_registry_rejects_duplicates_and_lists_names() -> None:
    with pytest.raises(RuntimeError, match="already registered"):
        register_model(MODELS.get("unet").function)
    with pytest.raises(
        SemsegError, match="unknown model 'unnet'; did you mean 'unet'.*available: .*unet"
    ):
        build_model("unnet", num_classes=2)
