from pathlib import Path

import pytest
import yaml

from semseg.config import Config, load_config
from semseg.errors import SemsegError


def test_defaults_file_and_overrides_apply_in_order(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("train:\n  epochs: 5\n  seed: 3\nmodel:\n  name: unet\n")
    config = load_config(path, ["train.epochs=7", "loss.class_weights=[1, 2.5]"])
    assert config.train.epochs == 7  # override beats file
    assert config.train.seed == 3  # file beats default
    assert config.model.name == "unet"
    assert config.loss.class_weights == [1.0, 2.5]
    assert config.optim.name == Config().optim.name  # untouched default


def test_bare_yaml_off_means_precision_off(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("train:\n  amp: off\neval:\n  amp: off\n")  # YAML 1.1 reads false
    config = load_config(path)
    assert config.train.amp == "off" and config.eval.amp == "off"
    assert load_config(None, ["eval.amp=off"]).eval.amp == "off"


def test_unknown_key_names_it_and_suggests_the_right_one() -> None:
    with pytest.raises(SemsegError) as info:
        load_config(None, ["train.epoch=3"])
    message = str(info.value)
    assert "'train.epoch'" in message
    assert "did you mean 'train.epochs'" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.epochs=abc", "'train.epochs'"),
        ("optim.name=adam", "'adamw' or 'sgd'"),
        ("data.scale_range=[2, 1]", "0 < min <= max"),
        ("data.num_workers=-1", "'auto' or a whole number"),
        ("train.device=gpu", "auto, cpu, cuda"),
        ("train.name=a/b", "plain folder name"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(override: str, expected: str) -> None:
    with pytest.raises(SemsegError, match="config key") as info:
        load_config(None, [override])
    assert expected in str(info.value)


def test_text_keys_keep_override_text_that_yaml_would_read_as_bool_or_number() -> None:
    config = load_config(None, ["train.name=off", "model.encoder=2024", "train.epochs=3"])
    assert config.train.name == "off"  # YAML 1.1 would read false
    assert config.model.encoder == "2024"
    assert config.train.epochs == 3  # numbers stay numbers where a number is expected
    assert load_config(None, ["train.name=null"]).train.name is None


def test_malformed_override_and_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(SemsegError, match="KEY=VALUE"):
        load_config(None, ["train.epochs"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(SemsegError, match=r"broken.yaml: invalid YAML at line"):
        load_config(broken)
    with pytest.raises(SemsegError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_config_show_prints_resolved_yaml(run_cli) -> None:
    code, out, _ = run_cli("config", "show", "train.epochs=3", "model.name=unet")
    assert code == 0
    shown = yaml.safe_load(out)
    assert shown["train"]["epochs"] == 3
    assert shown["model"]["name"] == "unet"
    assert load_config(None, None, base=shown) == load_config(
        None, ["train.epochs=3", "model.name=unet"]
    )


def test_cli_misspelt_key_is_one_line_exit_2(run_cli) -> None:
    code, out, err = run_cli("train", "trian.epochs=3")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: unknown config key 'trian'")
    assert "Traceback" not in err


def test_shipped_configs_are_valid() -> None:
    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert configs, "configs/ should hold ready experiments"
    for path in configs:
        load_config(path)
