"""Shipping a model: ONNX export with parity for every model family, metadata any app
reads, uint8 input, ONNX and folder models used like checkpoints, folders round-tripped
bit for bit, no pickle in folder loading, hf:// from a local Hub cache."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import semseg
from conftest import TINY_OVERRIDES
from semseg.config import load_config
from semseg.engine.checkpoint import model_record, save_checkpoint
from semseg.engine.inference import InferenceSettings
from semseg.errors import SemsegError
from semseg.models import build_model
from test_models import TINY, every_model

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

# Models whose graph cannot take any height and width, with the reason `semseg export`
# gives; every other registered model must export and agree with PyTorch.
NOT_EXPORTABLE: dict[str, str] = {}


def tiny_checkpoint(folder: Path, name: str, **extra_options) -> Path:
    """A checkpoint of the tiny variant of `name` on the shapes dataset (no training:
    parity needs weights, not good ones)."""
    options = {**TINY[name], **extra_options}
    options.pop("aux_head", None)
    overrides = [*TINY_OVERRIDES, f"model.name={name}", "model.base_width=null"]
    overrides += [f"model.{key}={value}" for key, value in options.items()]
    config = load_config(None, overrides)
    torch.manual_seed(0)
    model = build_model(name, 5, **config.model.builder_options())
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    config = config.model_copy(
        update={"data": config.data.model_copy(update={"mean": mean, "std": std})}
    )
    classes = semseg.ClassSet(("background", "circle", "square", "triangle", "cross"))
    path = folder / f"{name}.pt"
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        path,
        {
            "model": model_record(config, 5),
            "state_dict": model.state_dict(),
            "classes": classes.to_dict(),
            "config": config.to_plain(),
            "epoch": 1,
            "metrics": None,
        },
    )
    return path


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> Path:
    """A trained quick-start checkpoint (with metrics and a class bias)."""
    output = tmp_path_factory.mktemp("runs")
    overrides = [*TINY_OVERRIDES, "train.fit_class_bias=true", f"train.output_dir={output}"]
    return semseg.train(semseg.load_config(None, overrides)).run_dir / "best.pt"


# The slowest ONNX exports besides SegFormer B2..B5 (10-50 s each: deep or many-branched
# graphs, 10-13 s for the lighter ones here on two cores). Their torch.export, the graph
# ONNX export starts from, runs in test_models on every run; the ONNX translation and
# parity check run with `pytest -m slow`. SegFormer B0 stays as the transformer and
# lraspp as the real-time model.
SLOW_EXPORTS = {
    "segformer_b1",
    "setr",
    "setr_mla",
    "swin_unet",
    "transunet",
    "dfanet",
    "liteseg",
    "pspnet",
    "fast_scnn",
}


@pytest.mark.parametrize("name", every_model(SLOW_EXPORTS))
def test_every_model_exports_with_dynamic_size_and_matches_pytorch(
    name: str, tmp_path: Path
) -> None:
    from semseg.deploy.onnx_export import export_onnx

    checkpoint = tiny_checkpoint(tmp_path, name)
    out = tmp_path / f"{name}.onnx"
    if name in NOT_EXPORTABLE:
        with pytest.raises(SemsegError, match=NOT_EXPORTABLE[name]):
            export_onnx(checkpoint, out)
        assert not out.exists()
        return
    report = export_onnx(checkpoint, out)
    assert report.argmax_agreement >= 0.999 and "validation images" in report.images
    image = np.random.default_rng(0).integers(0, 255, (45, 61, 3), dtype=np.uint8)
    fp32 = InferenceSettings()  # onnxruntime runs fp32; PyTorch's default may be bf16
    reference = semseg.load(checkpoint, device="cpu", inference=fp32).predict(image)
    onnx_mask = semseg.load(out, device="cpu").predict(image)
    assert onnx_mask.shape == (45, 61) and (onnx_mask == reference).mean() >= 0.999


def test_metadata_is_readable_without_semseg(quick_run: Path, tmp_path: Path) -> None:
    """The five-line script of a user who does not have semseg."""
    from semseg.deploy.onnx_export import export_onnx

    out = tmp_path / "model.onnx"
    export_onnx(quick_run, out)
    session = onnxruntime.InferenceSession(str(out))
    meta = {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
    image = np.random.default_rng(0).integers(0, 255, (50, 70, 3)).astype(np.float32) / 255
    x = ((image - meta["mean"]) / meta["std"]).transpose(2, 0, 1)[None].astype(np.float32)
    labels = session.run(None, {"images": x})[0].argmax(1)[0]

    assert meta["class_names"] == ["background", "circle", "square", "triangle", "cross"]
    assert len(meta["palette"]) == 5 and meta["ignore_index"] == 255
    assert meta["input_layout"] == "NCHW" and meta["input_dtype"] == "float32"
    assert len(meta["class_bias"]) == 5 and 0 <= meta["metrics"]["miou"] <= 1
    assert meta["semseg_version"] == semseg.__version__
    expected = semseg.load(quick_run, device="cpu").predict((image * 255).round().astype(np.uint8))
    assert labels.shape == (50, 70) and (labels == expected).mean() > 0.99


def test_uint8_input_equals_the_float_path(quick_run: Path, tmp_path: Path) -> None:
    from semseg.deploy.onnx_export import export_onnx

    export_onnx(quick_run, tmp_path / "float.onnx")
    export_onnx(quick_run, tmp_path / "bytes.onnx", uint8_input=True)
    pixels = np.random.default_rng(1).integers(0, 255, (1, 41, 57, 3), dtype=np.uint8)
    as_bytes = onnxruntime.InferenceSession(str(tmp_path / "bytes.onnx"))
    as_float = onnxruntime.InferenceSession(str(tmp_path / "float.onnx"))
    meta = json.loads(as_float.get_modelmeta().custom_metadata_map["semseg"])
    normalised = (pixels / 255 - meta["mean"]) / meta["std"]
    floats = normalised.transpose(0, 3, 1, 2).astype(np.float32)
    from_bytes = as_bytes.run(None, {"images": pixels})[0]
    from_floats = as_float.run(None, {"images": floats})[0]
    assert np.abs(from_bytes - from_floats).max() < 1e-3
    assert (from_bytes.argmax(1) == from_floats.argmax(1)).all()


def test_onnx_models_run_where_checkpoints_do(quick_run: Path, tmp_path: Path, run_cli) -> None:
    out = tmp_path / "model.onnx"
    code, _, err = run_cli("export", quick_run, "--out", out)
    assert code == 0, err
    expected = semseg.evaluate(quick_run, overrides=["eval.amp=off"], out=tmp_path / "a.json")
    got = semseg.evaluate(out, out=tmp_path / "b.json")
    assert abs(got["metrics"]["miou"] - expected["metrics"]["miou"]) < 1e-3
    assert got["model_kind"] == "onnx"
    images = tmp_path / "images"
    images.mkdir()
    image = np.random.default_rng(2).integers(0, 255, (40, 52, 3), dtype=np.uint8)
    from PIL import Image

    Image.fromarray(image).save(images / "photo.png")
    for flags in ([], ["--flip", "--scales", "0.75,1"], ["--tile", "32"]):
        code, _, err = run_cli("predict", out, images, "--out", tmp_path / "p", *flags)
        assert code == 0, (flags, err)
        onnx_mask = np.array(Image.open(tmp_path / "p" / "photo.png"))
        code, _, err = run_cli("predict", quick_run, images, "--out", tmp_path / "q", *flags)
        torch_mask = np.array(Image.open(tmp_path / "q" / "photo.png"))
        assert (onnx_mask == torch_mask).mean() > 0.99, flags


def test_a_model_folder_round_trips_bit_for_bit(quick_run: Path, tmp_path: Path, run_cli) -> None:
    folder = tmp_path / "mymodel"
    code, out, err = run_cli(
        "export", quick_run, "--format", "folder", "--out", folder, "--licence", "apache-2.0"
    )
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    card = (folder / "README.md").read_text()
    assert "license: apache-2.0" in card and "## Metrics" in card and "semseg eval" in card
    checkpoint = semseg.load(quick_run, device="cpu")
    loaded = semseg.load(folder, device="cpu")
    own, theirs = checkpoint.model.state_dict(), loaded.model.state_dict()
    assert own.keys() == theirs.keys() and all(torch.equal(own[k], theirs[k]) for k in own)
    assert torch.equal(checkpoint.model.class_bias, loaded.model.class_bias)
    image = np.random.default_rng(3).integers(0, 255, (37, 49, 3), dtype=np.uint8)
    assert np.array_equal(checkpoint.predict(image), loaded.predict(image))
    code, _, err = run_cli("eval", folder, "--out", tmp_path / "eval.json")
    assert code == 0, err


def test_folder_loading_never_unpickles(quick_run: Path, tmp_path: Path) -> None:
    from semseg.deploy.folder import export_folder

    folder = export_folder(quick_run, tmp_path / "model")
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (folder / "model.safetensors").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(SemsegError, match="not a safetensors file"):
        semseg.load(folder)
    assert not marker.exists()


def _hub_cache(cache: Path, repo: str, folder: Path) -> None:
    """What huggingface_hub's cache holds after a download of `repo`."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(revision)
    snapshot = root / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for path in folder.iterdir():
        (snapshot / path.name).write_bytes(path.read_bytes())


def test_hub_models_load_from_the_local_cache_and_fail_in_one_line_offline(
    quick_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = pytest.importorskip("huggingface_hub")
    from semseg.deploy.folder import export_folder

    # huggingface_hub reads its environment when imported: set its constants instead.
    monkeypatch.setattr(hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    _hub_cache(tmp_path / "hub", "someone/shapes-unet", export_folder(quick_run, tmp_path / "m"))
    image = np.random.default_rng(4).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    fetched = semseg.load("hf://someone/shapes-unet", device="cpu")
    assert np.array_equal(
        fetched.predict(image), semseg.load(quick_run, device="cpu").predict(image)
    )
    with pytest.raises(SemsegError, match="hf://someone/missing: could not fetch the model folder"):
        semseg.load("hf://someone/missing")
