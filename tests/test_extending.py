"""Extending semseg from outside the package: a custom model, dataset format, loss and
augmentation registered through the public decorators, named in a config, trained and
evaluated, from Python and from the command line (through the config's `plugins`)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

import semseg
from semseg.classes import ClassSet
from semseg.data import FORMATS, train_dataset
from semseg.data.augment import AUGMENTATIONS
from semseg.errors import SemsegError
from semseg.losses import LOSSES, build_loss
from semseg.models.registry import MODELS

PLUGIN = textwrap.dedent(
    '''
    """A user's extensions: nothing here is part of semseg."""
    import numpy as np
    import torch
    from torch import nn
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    import semseg
    from semseg.classes import ClassSet
    from semseg.data.base import InMemoryDataset


    @semseg.register_model
    def pixel_mlp(num_classes, in_channels=3, hidden=8):
        """Per-pixel MLP: a plain nn.Module, not a SegmentationModel."""
        return nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, num_classes, 1)
        )


    @semseg.register_format("stripes", default_splits=("fit", "check"))
    def read_stripes(data, split):
        """Dark left half (class 0), bright right half (class 1)."""
        count = 12 if split == "fit" else 4
        images = np.zeros((count, 16, 16, 3), np.uint8)
        images[:, :, 8:] = 200
        masks = np.zeros((count, 16, 16), np.uint8)
        masks[:, :, 8:] = 1
        return InMemoryDataset(images, masks, ClassSet(("dark", "bright")), f"stripes_{split}")


    @semseg.register_loss("scaled_ce")
    def scaled_ce(logits, target, ignore_index=255, weights=None, factor=1.0):
        return factor * nn.functional.cross_entropy(
            logits, target, weight=weights, ignore_index=ignore_index
        )


    @semseg.register_augmentation("darken", default_p=0.5)
    def darken(fill, amount: int = 50):
        def shift(image):  # uint8 image in, the same type out (tv_tensors.wrap keeps it)
            return tv_tensors.wrap((image.float() - amount).clamp(0, 255).byte(), like=image)

        return v2.Lambda(shift, tv_tensors.Image)
    '''
)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The plugin file; the registries are restored afterwards, so other tests see only
    semseg's own entries."""
    for registry in (MODELS, FORMATS, LOSSES, AUGMENTATIONS):
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
        monkeypatch.setattr(registry, "_aliases", dict(registry._aliases))
    path = tmp_path / "my_plugin.py"
    path.write_text(PLUGIN)
    return path


def _config_data(plugin: Path, output: Path) -> dict:
    return {
        "plugins": [str(plugin)],
        "data": {
            "format": "stripes",
            "crop_size": 16,
            "batch_size": 4,
            "num_workers": 0,
            "augment": [{"name": "crop"}, {"name": "darken", "amount": 20, "p": 1.0}],
        },
        "model": {"name": "pixel_mlp"},
        "loss": {"terms": [{"name": "scaled_ce", "factor": 0.5}]},
        "optim": {"lr": 0.05},
        "train": {"epochs": 3, "output_dir": str(output), "sample_images": 2, "name": "ext"},
    }


def test_custom_model_format_loss_and_augmentation_train_by_name(
    plugin: Path, tmp_path: Path
) -> None:
    config = semseg.load_config(base=_config_data(plugin, tmp_path / "runs"))
    assert {"pixel_mlp", "stripes", "scaled_ce", "darken"} <= (
        set(MODELS) | set(FORMATS) | set(LOSSES) | set(AUGMENTATIONS)
    )
    # Each extension does what it says: the split names, the loss, the augmentation.
    dataset = train_dataset(config.data)
    assert len(dataset) == 12 and dataset.classes.names == ("dark", "bright")
    logits, target = torch.randn(2, 2, 4, 4), torch.randint(0, 2, (2, 4, 4))
    loss = build_loss(config.loss, dataset.classes)(logits, target)
    assert torch.isclose(loss, 0.5 * torch.nn.functional.cross_entropy(logits, target))
    raw, _ = dataset.load(0)
    image, _ = dataset[0]
    mean, std = config.data.normalization()
    darkened = (raw[0, 0, -1].float() - 20) / 255
    assert torch.isclose(image[0, 0, -1], (darkened - mean[0]) / std[0], atol=1e-5)

    result = semseg.train(config)
    assert result.best_metrics["miou"] > 0.9  # two flat halves: learnt
    assert semseg.evaluate(result.run_dir / "best.pt")["images"] == 4  # the "check" split


def test_error_messages_and_listings_name_the_users_entries(plugin: Path, run_cli) -> None:
    semseg.load_config(None, [f"plugins=[{plugin}]"])
    with pytest.raises(SemsegError, match="did you mean 'scaled_ce'.*available: .*scaled_ce"):
        build_loss(semseg.load_config(None, ["loss.name=scaled_cee"]).loss, ClassSet(("a", "b")))
    with pytest.raises(SemsegError, match="unknown augmentation 'darkn'; did you mean 'darken'"):
        train_dataset(semseg.load_config(None, ["data.augment=[{name: darkn}]"]).data)
    with pytest.raises(SemsegError, match=r"'model.width': model 'pixel_mlp' .* it takes hidden"):
        semseg.build_model("pixel_mlp", 2, width=4)
    code, out, _ = run_cli("data", "formats")
    assert code == 0 and "stripes" in out and "fit / check" in out
    code, out, _ = run_cli("models", "--size", "32x32", "--classes", "2")
    assert code == 0 and "pixel_mlp" in out and "Per-pixel MLP" in out


def test_the_command_line_imports_plugins_from_the_config_and_the_checkpoint(
    plugin: Path, tmp_path: Path
) -> None:
    """A real `semseg` process: the config names the plugin (relative to the working
    directory); `semseg eval` finds it again through the checkpoint's config alone."""
    data = _config_data(Path(plugin.name), Path("runs"))
    data["train"]["epochs"] = 1
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(data))
    semseg_cli = [sys.executable, "-m", "semseg"]
    for command in (["train", "-c", "exp.yaml"], ["eval", "runs/ext/best.pt"]):
        done = subprocess.run([*semseg_cli, *command], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "runs/ext/eval.json").read_text())["split"] == "check"


def test_a_broken_plugin_is_one_line_naming_it(tmp_path: Path, run_cli) -> None:
    (tmp_path / "broken.py").write_text("raise ValueError('oops')\n")
    code, _, err = run_cli("config", "show", f"plugins=[{tmp_path / 'broken.py'}]")
    assert code == 2 and "importing" in err and "ValueError: oops" in err
    code, _, err = run_cli("config", "show", "plugins=[no_such_module_here]")
    assert code == 2 and "cannot import 'no_such_module_here'" in err
    code, _, err = run_cli("config", "show", f"plugins=[{tmp_path / 'missing.py'}]")
    assert code == 2 and "missing.py not found" in err


def test_listing_commands_import_the_plugins_they_are_given(plugin: Path, run_cli) -> None:
    code, out, _ = run_cli("models", f"plugins=[{plugin}]", "--size", "32x32", "--classes", "2")
    assert code == 0 and "pixel_mlp" in out
    code, out, _ = run_cli("data", "formats", f"plugins=[{plugin}]")
    assert code == 0 and "stripes" in out
