"""Typed experiment configuration: pydantic models, YAML files and dotted overrides.

A YAML file only overrides the defaults below, and `key.sub=value` arguments override the
file. Every key is validated; a mistake is reported as one line naming the key.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from semseg.errors import SemsegError
from semseg.plugins import import_plugins

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Triple = tuple[float, float, float]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


_UNITS = {"h": 3600, "m": 60, "s": 1}


def size_pair(size: int | tuple[int, int]) -> tuple[int, int]:
    """(height, width) of a size written as one number (a square) or as a pair."""
    return (size, size) if isinstance(size, int) else tuple(size)


def parse_duration(text: str) -> float:
    """'30m', '1h30m', '90s', '2h' or plain seconds ('1800') -> seconds (train.time_budget).

    Raises:
        SemsegError: not a duration, or not more than 0 seconds.
    """
    cleaned = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        seconds = float(cleaned)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", cleaned)
        if not parts or "".join(n + u for n, u in parts) != cleaned:
            raise SemsegError(
                f"config key 'train.time_budget': {text!r} is not a duration; "
                "write e.g. 30m, 1h30m, 90s"
            )
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise SemsegError("config key 'train.time_budget': must be more than 0 seconds")
    return seconds


def _off_is_not_false(value: Any) -> Any:
    """YAML 1.1 reads a bare `off` as false; for a precision setting it means "off"."""
    return "off" if value is False else value


class ShapesConfig(_Section):
    """The built-in generated dataset (see semseg.data.shapes)."""

    size: int = Field(64, ge=32, le=1024, description="image height and width in pixels")
    num_train: int = Field(480, ge=1, description="training images")
    num_val: int = Field(96, ge=1, description="validation images")
    seed: int = Field(0, description="the generator's seed (the same seed, the same images)")


class DataConfig(_Section):
    """What to read (format, root, splits, file layout), how to augment it, and how to
    batch it. `semseg data check` reads a dataset with these keys and lists its problems."""

    format: str = Field(
        "shapes",
        description="shapes, folder, voc, camvid, oxford_pet, cityscapes, ade20k, coco, coco_stuff",
    )
    root: Path | None = Field(None, description="dataset folder (not used by shapes)")
    train_split: str | None = Field(None, description="default: the format's (e.g. train)")
    val_split: str | None = Field(None, description="default: the format's (e.g. val)")
    image_mode: Literal["rgb", "gray"] = Field(
        "rgb", description="rgb: grayscale files are replicated; gray: one input channel"
    )
    cache: bool = Field(False, description="decode every sample once and keep it in RAM")
    on_error: Literal["stop", "skip"] = Field(
        "stop",
        description="a training sample that cannot be read: stop (naming the file), or skip "
        "it (replaced by another sample, listed in RUN/skipped.txt); validation never skips",
    )
    max_skipped: float = Field(
        0.01,
        ge=0,
        le=1,
        description="on_error=skip: the share of broken training samples "
        "tolerated before the run stops anyway",
    )
    max_pixels: int = Field(
        2**27,
        ge=1,
        description="images and masks with more pixels are refused before decoding "
        "(decompression bombs); PIL itself refuses above about 179 M",
    )
    # folder format
    classes: Path | None = Field(None, description="classes.yaml; default ROOT/classes.yaml")
    image_dir: str = Field("images", description="folder: the image folder under data.root")
    mask_dir: str = Field("masks", description="folder: the mask folder under data.root")
    mask_suffix: str = Field("", description="mask name = image stem + suffix, e.g. _mask")
    mask_encoding: Literal["index", "rgb"] = Field(
        "index", description="rgb: colour masks mapped through the classes.yaml palette"
    )
    value_map: dict[int, int] | None = Field(
        None, description="stored mask value -> class index (or ignore), e.g. {255: 1}"
    )
    val_ratio: float = Field(
        0.2, gt=0, lt=1, description="share held out for validation when no split lists exist"
    )
    split_seed: int = Field(0, description="seed of the data.val_ratio draw")
    binary_255: bool | None = Field(
        None, description="read mask value 255 as class 1; default: on for two-class datasets"
    )
    # format-specific
    voc_aug: bool = Field(False, description="voc: SBD masks from SegmentationClassAug")
    pet_border: Literal["ignore", "class"] = Field(
        "ignore", description="oxford_pet: the trimap border band as ignore or a class"
    )
    shapes: ShapesConfig = ShapesConfig()
    batch_size: int = Field(8, ge=1, description="training images per step (per process)")
    num_workers: int | Literal["auto"] = Field(
        "auto",
        description="DataLoader workers; auto: none for in-memory datasets, else min(4, cores - 1)",
    )
    crop_size: int | tuple[int, int] = Field(
        64, description="training crop (padded with ignore where the image is smaller)"
    )
    scale_range: tuple[float, float] = Field(
        (0.5, 2.0), description="random rescale before the crop (default pipeline)"
    )
    hflip: bool = Field(True, description="random horizontal flip (default pipeline)")
    color_jitter: float = Field(0.2, ge=0, le=1, description="0 turns photometric jitter off")
    augment: list[dict[str, Any]] | None = Field(
        None, description="ordered transforms, e.g. [{name: rotate, degrees: 30, p: 0.5}]"
    )
    augment_preset: Literal["natural", "driving", "aerial", "medical"] | None = Field(
        None, description="a named augmentation list (data.augment wins when both are set)"
    )
    sampler: Literal["uniform", "rare_class"] = Field(
        "uniform", description="rare_class: draw images holding rare classes more often"
    )
    rare_class_power: float = Field(
        1.0, ge=0, description="rare_class: 0 uniform, 1 class-balanced, >1 rarest first"
    )
    multiscale: tuple[float, float] | None = Field(
        None, description="random scale per training batch, e.g. [0.75, 1.25]"
    )
    mean: Triple | None = Field(
        None,
        description="input normalisation; default: the encoder's pretrained config, "
        "else ImageNet's (training records the values used)",
    )
    std: Triple | None = Field(None, description="input normalisation; default as data.mean")

    def normalization(self) -> tuple[Triple, Triple]:
        """(mean, std) for the transforms: the configured values, else ImageNet's. Training
        fills both in from the model first (see engine.setup), so a run's saved config and
        its checkpoint always state what was used."""
        return self.mean or IMAGENET_MEAN, self.std or IMAGENET_STD

    @field_validator("scale_range")
    @classmethod
    def _ordered_positive(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 < low <= high:
            raise ValueError("needs 0 < min <= max, e.g. [0.5, 2.0]")
        return value

    @field_validator("num_workers")
    @classmethod
    def _non_negative(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("must be 'auto' or a whole number >= 0")
        return value


class ModelConfig(_Section):
    """The architecture (`semseg models` lists them), its encoder and weights. Checkpoints
    record these keys, so `eval` and `predict` rebuild the model from the file alone."""

    name: str = Field("unet_small", description="registered model name (semseg models)")
    encoder: str | None = Field(
        None, description="timm model name or tv_resnet50, tv_mobilenet_v3_large, ..."
    )
    pretrained: bool = Field(False, description="ImageNet encoder weights (download or package)")
    weights: Path | None = Field(None, description="local weights file: whole model or encoder")
    output_stride: Literal[8, 16, 32] | None = Field(
        None, description="deeplabv3/deeplabv3plus: the encoder's output stride (dilation)"
    )
    aux_head: bool = Field(
        False,
        description="an auxiliary FCN head on a deeper feature, trained with weight "
        "loss.aux_weight for deep supervision (every model; not used at inference)",
    )
    base_width: int | None = Field(None, ge=4, description="override the builder's base width")
    decoder_widths: list[PositiveInt] | None = Field(
        None, description="U-Net on an encoder: decoder widths, deep to shallow"
    )
    frozen_stages: int = Field(
        0, ge=0, description="encoder stages (from the stem) kept at their pretrained weights"
    )
    multi_grid: list[PositiveInt] | None = Field(
        None,
        description="deeplabv3/deeplabv3plus: rates of the last encoder stage's blocks, "
        "times the stage's dilation (DeepLabv3's multi-grid, e.g. [1, 2, 4])",
    )
    sync_bn: bool = Field(
        False,
        description="under torchrun on CUDA: BatchNorm statistics over the global batch "
        "(SyncBatchNorm); refused on the CPU",
    )

    def builder_options(self) -> dict[str, object]:
        """Keyword arguments for the registered builder; unset ones keep its defaults."""
        return {
            "encoder": self.encoder,
            "pretrained": self.pretrained or None,
            "output_stride": self.output_stride,
            "aux_head": self.aux_head or None,
            "base_width": self.base_width,
            "decoder_widths": self.decoder_widths,
            "multi_grid": self.multi_grid,
        }


class LossTerm(BaseModel):
    """One weighted term of a combined loss; other keys are the loss's own parameters
    (e.g. gamma for focal), checked against it when the loss is built."""

    model_config = ConfigDict(extra="allow")
    name: str
    weight: float = Field(1.0, ge=0)
    # Dice-like terms average over classes already: median-frequency weights on top of
    # that weigh a rare class twice.
    class_weights: bool = Field(True, description="apply loss.class_weights to this term")

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class LossConfig(_Section):
    """The training loss: one by name, or a weighted list (`loss: [{name: ce}, {name:
    dice, weight: 0.5}]`), with class weights for imbalanced data."""

    name: str = Field(
        "cross_entropy",
        description="cross_entropy (ce), ohem, dice, focal, lovasz, tversky, boundary",
    )
    terms: list[LossTerm] | None = Field(
        None,
        description="weighted combination, e.g. [{name: ce}, {name: dice, weight: 0.5}]; a "
        "term's class_weights: false leaves loss.class_weights out of it",
    )
    class_weights: list[float] | Literal["auto"] | None = Field(
        None, description="one weight per class, or auto (from the training set statistics)"
    )
    class_weighting: Literal["median_frequency", "enet"] = Field(
        "median_frequency", description="the rule behind class_weights=auto"
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="cross_entropy only")
    logit_adjustment: float = Field(
        0.0,
        ge=0,
        description="tau: the loss scores logits + tau x log(training class prior), so the "
        "network learns class-balanced scores (Menon et al. 2021); an alternative to "
        "class_weights, 1 balances fully",
    )
    aux_weight: float = Field(0.4, ge=0, description="weight of the auxiliary head's loss")

    def resolved_terms(self) -> list[LossTerm]:
        """The terms to build: `terms`, or the single loss `name` (with label smoothing
        when it is cross-entropy)."""
        if self.terms:
            return self.terms
        smoothing = {"label_smoothing": self.label_smoothing} if self.label_smoothing else {}
        if self.name not in ("cross_entropy", "ce"):
            smoothing = {}
        return [LossTerm(name=self.name, weight=1.0, **smoothing)]


class OptimConfig(_Section):
    """Optimiser and learning-rate schedule (norms and biases get no weight decay)."""

    name: Literal["adamw", "sgd"] = Field("adamw", description="the optimiser")
    lr: float = Field(3e-3, gt=0, description="peak learning rate, after the warmup")
    encoder_lr_scale: float = Field(
        1.0, gt=0, description="a pretrained encoder's learning rate, as a share of optim.lr"
    )
    weight_decay: float = Field(1e-4, ge=0, description="decoupled for adamw")
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd momentum")
    schedule: Literal["poly", "cosine", "plateau", "constant"] = Field(
        "poly",
        description="after the warmup, over train.epochs or over train.time_budget; "
        "plateau divides on validation mIoU",
    )
    poly_power: float = Field(0.9, gt=0, description="poly: lr x (1 - progress) ^ power")
    warmup_epochs: float = Field(0.5, ge=0, description="linear warmup, in epochs")
    min_lr: float = Field(0.0, ge=0, description="floor of the poly and cosine schedules")
    plateau_patience: int = Field(3, ge=0, description="validations without improvement")
    plateau_factor: float = Field(0.1, gt=0, lt=1, description="plateau: the lr multiplier")
    grad_clip: float | None = Field(None, gt=0, description="max gradient norm; off when null")
    lr_scaling: Literal["none", "linear"] = Field(
        "none",
        description="under torchrun: linear multiplies optim.lr by the number of processes "
        "(the global batch over one process's); none keeps it",
    )


class TrainConfig(_Section):
    """How long and how to train, where the run folder goes, and speed settings."""

    epochs: int = Field(10, ge=1, description="with time_budget: an upper bound")
    time_budget: str | None = Field(
        None, description="wall-clock training budget, e.g. 30m or 1h30m; sets the LR schedule"
    )
    val_every: int = Field(1, ge=1, description="validate every N epochs (and after the last)")
    seed: int = Field(0, description="seeds weights, data order and augmentation")
    deterministic: bool = Field(
        False, description="deterministic kernels: a resumed run equals an uninterrupted one"
    )
    device: str = Field(
        "auto", description="auto (cuda when available, else cpu), cpu, cuda, cuda:N, mps"
    )
    output_dir: Path = Field(Path("runs"), description="parent of the run folders")
    name: str | None = Field(None, description="run folder name; default FORMAT-MODEL[-N]")
    sample_images: int = Field(4, ge=1, le=16, description="rows in samples.png")
    channels_last: bool = Field(True, description="NHWC memory layout (faster convs on CPU/GPU)")
    amp: Literal["auto", "off", "bf16", "fp16"] = Field(
        "auto",
        description="mixed precision; auto: on CPUs with bf16 units the fastest of bf16 "
        "(depthwise convs in fp32 or not) and fp32, timed before training; bf16/fp16 on CUDA",
    )
    compile: bool = Field(False, description="torch.compile the training forward pass")
    ema_decay: float | None = Field(
        None, gt=0, lt=1, description="evaluate and save an exponential moving average"
    )
    accumulate_steps: int = Field(1, ge=1, description="batches per optimiser step")
    tensorboard: bool = Field(False, description="also log to RUN/tensorboard")
    resume: Literal["auto"] | None = Field(
        None,
        description="auto: continue RUN/last.pt when it exists, else start RUN (RUN is "
        "train.name, default FORMAT-MODEL); what torchrun --max-restarts relies on",
    )
    fit_class_bias: bool = Field(
        False,
        description="after training, add t * log(training class prior) to the logits, t "
        "chosen by val mIoU, in best.pt (val mIoU is then optimistic: score another split)",
    )

    _amp_off = field_validator("amp", mode="before")(_off_is_not_false)

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value not in ("auto", "cpu", "cuda", "mps") and not value.startswith("cuda:"):
            raise ValueError("must be auto, cpu, cuda, cuda:N or mps")
        return value

    @field_validator("time_budget")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_duration(value)
            except SemsegError as err:
                raise ValueError(str(err).split(": ", 1)[-1]) from None
        return value

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or "/" in value or value in (".", "..")):
            raise ValueError("must be a plain folder name without '/'")
        return value


class EvalConfig(_Section):
    """Inference for validation, `semseg eval`, `predict`, the class-bias fit and the
    server: whole image or sliding window, test-time augmentation, precision, CRF."""

    batch_size: int = Field(4, ge=1, description="images per forward pass")
    mode: Literal["whole", "slide"] = Field("whole", description="whole image or tiles")
    crop_size: int | tuple[int, int] = Field(512, description="slide: tile size")
    stride: int | tuple[int, int] = Field(341, description="slide: step between tiles")
    tile_batch: int | Literal["auto"] = Field(
        "auto", description="slide: tiles per forward pass; auto: 8 on CUDA, 1 on CPU"
    )
    # Test-time augmentation applies to semseg eval/predict, the class-bias fit and
    # samples.png; validation during training runs one pass (it only ranks checkpoints).
    scales: list[float] = Field([1.0], description="test-time scales, e.g. [0.75, 1, 1.25]")
    flip: bool = Field(False, description="test-time horizontal flip")
    amp: Literal["auto", "off", "bf16", "fp16"] = Field(
        "auto",
        description="inference precision; auto: bf16 on CPUs with native bf16 and on CUDA "
        "(fp16 where bf16 is missing), else fp32",
    )
    boundary_tolerance: float = Field(
        0.0075, gt=0, lt=1, description="boundary F1 tolerance, fraction of the diagonal"
    )
    boundary_metrics: bool = Field(
        True, description="semseg eval: boundary F1/IoU (~0.12 s per 360x480 image on 2 cores)"
    )
    crf: bool = Field(
        False,
        description="eval/predict: refine the scores with a local-window dense CRF "
        "(mean field, appearance + smoothness kernels; engine/crf.py)",
    )
    crf_iterations: int = Field(5, ge=0, description="CRF mean-field iterations")
    crf_window: int = Field(7, ge=3, description="CRF window side in pixels (odd)")
    crf_appearance_weight: float = Field(10.0, ge=0, description="CRF appearance kernel weight")
    crf_appearance_xy: float = Field(80.0, gt=0, description="CRF appearance theta, pixels")
    crf_appearance_rgb: float = Field(13.0, gt=0, description="CRF appearance theta, 0..255")
    crf_smoothness_weight: float = Field(3.0, ge=0, description="CRF smoothness kernel weight")
    crf_smoothness_xy: float = Field(3.0, gt=0, description="CRF smoothness theta, pixels")

    _amp_off = field_validator("amp", mode="before")(_off_is_not_false)

    @field_validator("crf_window")
    @classmethod
    def _odd_window(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("must be odd (the pixel sits in the middle), e.g. 7")
        return value

    @field_validator("scales")
    @classmethod
    def _positive_scales(cls, value: list[float]) -> list[float]:
        if not value or any(scale <= 0 for scale in value):
            raise ValueError("needs at least one scale, all > 0")
        return value


class Config(_Section):
    """The whole experiment: `semseg config show` prints it resolved."""

    plugins: list[str] = Field(
        [],
        description="modules (or .py files, relative to the working directory) to import "
        "first: they register custom models, formats, losses, augmentations",
    )
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()

    @model_validator(mode="before")
    @classmethod
    def _loss_list_is_terms(cls, data: Any) -> Any:
        """`loss: [{name: ce}, {name: dice, weight: 0.5}]` is short for loss.terms."""
        if isinstance(data, dict) and isinstance(data.get("loss"), list):
            data = {**data, "loss": {"terms": data["loss"]}}
        return data

    def to_plain(self) -> dict[str, Any]:
        """JSON/YAML-safe nested dict (paths as strings, tuples as lists)."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_plain(), sort_keys=False)


def load_config(
    path: Path | str | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
) -> Config:
    """The experiment configuration: defaults, then `base` (e.g. a checkpoint's config),
    then a YAML file, then dotted overrides.

    Args:
        path: a YAML file with any of the sections (data, model, loss, optim, train, eval).
        overrides: `KEY=VALUE` strings, e.g. `["train.epochs=3", "model.name=unet"]`;
            values are parsed as YAML (`loss.class_weights=[1,2,3]`).
        base: plain config data to start from instead of the defaults alone.

    Returns:
        The validated Config (its `plugins` imported).

    Raises:
        SemsegError: a missing or malformed file, a bad override, or an invalid key or
            value; the message names the key and says what is allowed.
    """
    data: dict[str, Any] = dict(base or {})
    if path is not None:
        data = _deep_merge(data, _read_yaml(Path(path)))
    for item in overrides or []:
        _apply_override(data, item)
    return validate_config(data)


def validate_config(data: dict[str, Any]) -> Config:
    """A Config from plain data (defaults filled in); imports the listed plugins, so
    that the names they register resolve.

    Raises:
        SemsegError: the first invalid key, named, with what is allowed.
    """
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        raise SemsegError(_describe(err)) from None
    import_plugins(config.plugins)
    return config


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SemsegError(f"{path}: config file not found; check the path given to --config")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SemsegError(f"{path}: invalid YAML{where}; fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SemsegError(f"{path}: expected a mapping of sections (data:, model:, ...)")
    return data


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _apply_override(data: dict[str, Any], item: str) -> None:
    key, sep, raw = item.partition("=")
    if not sep and item.endswith((".yaml", ".yml")):
        raise SemsegError(f"{item!r} looks like a config file; pass it with -c/--config {item}")
    if not sep or not key or any(not part for part in key.split(".")):
        raise SemsegError(
            f"override {item!r}: expected KEY=VALUE with a dotted key, e.g. train.epochs=3"
        )
    try:
        value = yaml.safe_load(raw) if raw else None
    except yaml.YAMLError:
        value = raw  # e.g. an unquoted path with ':' stays a plain string
    parts = key.split(".")
    if isinstance(value, bool | int | float) and _is_text_field(parts):
        value = raw  # train.name=off or =2024 names a run, not false or a number
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            parent = ".".join(parts[: depth + 1])
            raise SemsegError(f"override {item!r}: config key '{parent}' is not a section")
        node = child
    node[parts[-1]] = value


def _is_text_field(path: list[str]) -> bool:
    """Whether the key at `path` takes free text (str or str | None)."""
    section = _section_model(path[:-1])
    field = section.model_fields.get(path[-1]) if section else None
    if field is None:
        return False
    return field.annotation is str or set(get_args(field.annotation)) == {str, type(None)}


def _describe(err: ValidationError) -> str:
    """One line for the first problem: the dotted key, what is wrong and what is allowed."""
    problem = err.errors()[0]
    loc = [str(p) for p in problem["loc"]]
    key = ".".join(loc)
    if problem["type"] == "extra_forbidden":
        section_model = _section_model(loc[:-1])
        valid = list(section_model.model_fields) if section_model else []
        hint = difflib.get_close_matches(loc[-1], valid, n=1)
        did_you_mean = f"did you mean '{'.'.join(loc[:-1] + hint)}'? " if hint else ""
        return f"unknown config key '{key}'; {did_you_mean}valid keys here: {', '.join(valid)}"
    # Unions report each branch ('num_workers.int'); name the field, not the branch.
    key = ".".join(p for p in loc if p not in ("int", "str", "literal['auto']", "tuple"))
    got = problem.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict) else ""
    message = problem["msg"].removeprefix("Value error, ")
    return f"config key '{key}': {message}{shown}"


def _section_model(path: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in path:
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model
