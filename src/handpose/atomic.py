"""Writing files so that a killed process or a full disk leaves the old whole file or the new whole file, never a
part: write a temporary file in the same folder (``os.replace`` is atomic only within one filesystem, which a
temporary folder elsewhere such as ``$TMPDIR`` is not), fsync it, rename it over the target, fsync the folder."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from handpose.errors import HandposeError


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_path(path: Path) -> Path:
    """The hidden temporary name beside ``path`` that this process writes before renaming."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _keep(path: Path, previous: Path) -> None:
    """Make ``previous`` the current ``path`` (a hard link; a copy where a filesystem has none)."""
    prev_tmp = temp_path(previous)
    prev_tmp.unlink(missing_ok=True)
    try:
        os.link(path, prev_tmp)
    except OSError:
        shutil.copyfile(path, prev_tmp)
    os.replace(prev_tmp, previous)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], keep_previous: str | Path | None = None) -> None:
    """Write ``path`` through ``write(file)`` atomically.

    Args:
        path: the file to (re)place.
        write: writes the whole content into the open binary file it is given (e.g. ``lambda f: torch.save(x, f)``).
        keep_previous: when given and ``path`` exists, the old file is kept under this name (hard-linked, or copied
            where the filesystem has no hard links, before the rename: there is never a moment without ``path``).

    Raises:
        OSError: the file cannot be written (permissions, full disk); the temporary file is removed and ``path`` is
            as it was.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous is not None and path.is_file():
            _keep(path, Path(keep_previous))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def check_writable(folder: str | Path, what: str) -> Path:
    """Create ``folder`` if needed and prove a file can be written there (written and removed).

    Raises:
        HandposeError: naming ``what`` and the folder, when it cannot be created or written.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temp_path(folder / "write-test")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise HandposeError(f"{what} {folder} is not writable ({e.strerror or e})") from e
    return folder


class JsonListWriter:
    """A JSON list written entry by entry (memory stays flat however many entries) into a temporary file beside
    ``path``, renamed to ``path`` by :meth:`close` (also after an interrupt: the file then holds what was done).

    Raises:
        HandposeError: at construction, when ``path`` is a folder or cannot be written (before any work is done).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise HandposeError(f"{self.path}: is a folder, not a file to write results to")
        check_writable(self.path.parent, "results folder")
        self._tmp = temp_path(self.path)
        try:
            self._f = open(self._tmp, "w", encoding="utf-8")
        except OSError as e:
            raise HandposeError(f"{self.path}: cannot write results ({e.strerror or e})") from e
        self._f.write("[")
        self.count = 0

    def write(self, entries: Iterable[dict]) -> None:
        """Append entries (JSON-serialisable dicts) and flush them to the temporary file."""
        for e in entries:
            self._f.write(("\n" if self.count == 0 else ",\n") + json.dumps(e))
            self.count += 1
        self._f.flush()

    def close(self) -> None:
        """Finish the list and rename it into place (idempotent)."""
        if self._f.closed:
            return
        self._f.write("\n]\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self._tmp, self.path)
        _fsync_dir(self.path.parent)
