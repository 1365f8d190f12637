"""`plugins`: user modules imported before anything is built, so that the models,
formats, losses and augmentations they register can be named in a config (and in the
config a checkpoint carries, so `semseg eval` and `predict` find them too)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

from semseg.errors import SemsegError


def import_plugins(names: Iterable[str]) -> None:
    """Import each module name or .py file once (importing twice would register twice).

    Raises:
        SemsegError: a module that cannot be found or fails while importing.
    """
    for name in names:
        try:
            if name.endswith(".py"):
                _import_file(Path(name))
            else:
                importlib.import_module(name)
        except SemsegError:
            raise
        except ModuleNotFoundError as err:
            raise SemsegError(
                f"config key 'plugins': cannot import {name!r} ({err}); give an importable "
                "module name or the path of a .py file"
            ) from None
        except Exception as err:
            raise SemsegError(
                f"config key 'plugins': importing {name!r} failed ({type(err).__name__}: "
                f"{err}); fix the module (--debug shows the traceback)"
            ) from err


def _import_file(path: Path) -> None:
    if not path.is_file():
        raise SemsegError(
            f"config key 'plugins': {path} not found; paths are relative to the working directory"
        )
    module_name = "semseg_plugin_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    if module_name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
