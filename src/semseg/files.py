"""Writing outputs safely.

Output paths are checked before any work starts (a file where a folder must be, no
permission), without creating anything. Writes go through a temporary file in the same
folder, fsync and a rename: a crash or a full disk leaves the previous file, never a
torn one, and the error names the file and the disk that refused it.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from semseg.errors import SemsegError

_FULL = (errno.ENOSPC, errno.EDQUOT)


def check_output_file(path: Path | str, option: str) -> Path:
    """`path` as a file that can be written (its folders may still be missing).

    Raises:
        SemsegError: a folder is at `path`, a file is where one of its folders must be,
            or the nearest existing folder is not writable; names `option`.
    """
    path = Path(path)
    if path.is_dir():
        raise SemsegError(f"{path}: is a folder; {option} needs a file path")
    _check_creatable(path.parent, path, option)
    return path


def check_output_folder(path: Path | str, option: str) -> Path:
    """`path` as a folder that exists or can be created, and written into.

    Raises:
        SemsegError: as `check_output_file`.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SemsegError(f"{path}: is a file; {option} needs a folder")
    _check_creatable(path, path, option)
    return path


def _check_creatable(folder: Path, target: Path, option: str) -> None:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SemsegError(f"{target}: {existing} is a file, not a folder; choose another {option}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SemsegError(
            f"{target}: no permission to write in {existing}; choose another {option}"
        )


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], Any], after: str = "") -> None:
    """Write `path` through `write(file)` atomically, creating its folders.

    Raises:
        SemsegError: the disk refused the write (full, read-only, ...); names the file and
            the disk, then `after` (e.g. what is still intact and how to go on).
    """
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
        os.close(handle)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are shared
        with open(temporary, "wb") as raw:  # by name, so the writer sees which file it is
            file = _WatchedFile(raw)
            try:
                write(file)
            except Exception:
                # Some writers (torch.save in some versions) turn the disk's OSError into
                # their own error: report the disk's.
                if file.error is not None:
                    raise file.error from None
                raise
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _write_error(path, error, after) from error
        raise


class _WatchedFile:
    """A binary file that remembers the OSError a write raised."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self.name = file.name
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._file.write(data)
        except OSError as error:
            self.error = error
            raise

    def __getattr__(self, name: str) -> Any:  # flush, tell, seek, fileno, ...
        return getattr(self._file, name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_error(path: Path, error: OSError, after: str) -> SemsegError:
    reason = error.strerror or str(error)
    if error.errno in _FULL:
        where = f"the disk holding {_mount_point(path)} is full; free space there"
    else:
        where = "check the disk and the folder's permissions"
    return SemsegError(
        f"{path}: could not write it ({reason}); {where}" + (f"; {after}" if after else "")
    )


def _mount_point(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() or not os.path.ismount(path):
        if path == path.parent:
            break
        path = path.parent
    return path


def write_text_atomic(path: Path | str, text: str) -> None:
    atomic_write(path, lambda file: file.write(text.encode()))


def json_safe(value: Any) -> Any:
    """NaN becomes null: JSON has no NaN, and null reads as 'undefined' (see metrics)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def write_json(path: Path | str, data: Any) -> None:
    write_text_atomic(path, json.dumps(json_safe(data), indent=2) + "\n")
