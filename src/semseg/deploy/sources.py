"""Where a model can come from: a checkpoint (`best.pt`), a model folder, an ONNX file,
or `hf://OWNER/NAME[@REVISION]` (a model folder on the Hugging Face Hub). Every command
and `semseg.load` accept each of them."""

from __future__ import annotations

from pathlib import Path

from semseg.deploy.folder import load_folder
from semseg.deploy.onnx_model import load_onnx
from semseg.engine.bundle import ModelBundle, bundle_from_checkpoint
from semseg.errors import SemsegError

HUB_PREFIX = "hf://"


def load_model(source: Path | str) -> ModelBundle:
    """The model at `source` with its classes, config and facts.

    Raises:
        SemsegError: a missing or unreadable file, or a Hub model that cannot be fetched.
    """
    text = str(source)
    if text.startswith(HUB_PREFIX):
        return load_folder(hub_folder(text.removeprefix(HUB_PREFIX)), source=text)
    path = Path(source)
    if path.is_dir():
        return load_folder(path)
    if path.suffix.lower() == ".onnx":
        return load_onnx(path)
    return bundle_from_checkpoint(path)


def hub_folder(address: str) -> Path:
    """The local copy of a Hub model folder (fetched, or from the local Hub cache)."""
    repo_id, _, revision = address.partition("@")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise SemsegError(
            f"{HUB_PREFIX}{address}: fetching from the Hugging Face Hub needs huggingface_hub: "
            "pip install 'semseg[hub]'"
        ) from None
    try:
        return Path(snapshot_download(repo_id=repo_id, revision=revision or None))
    except Exception as err:  # offline, unknown repo, bad revision: all mean "not fetched"
        reason = f"{type(err).__name__}: {str(err).splitlines()[0][:100] if str(err) else ''}"
        raise SemsegError(
            f"{HUB_PREFIX}{address}: could not fetch the model folder ({reason}); check the "
            "name and the network, or download the folder and pass its path"
        ) from None
