"""Atomic writes and hashing: an interrupted write never leaves a file that looks finished.

Every output goes through one writer. A file (or a directory such as .mlpackage) is written under its final
name inside a hidden staging folder beside it (``.<name>.partial-<pid>-<random>/<name>``), so converters that
look at the suffix see the right one and nothing at the top level looks finished until the staged copy is
renamed over the final path. ``publish`` renames several staged files (an artifact and its manifest) while
holding the folder's lock, so two writers into the same folder never interleave their pairs. A process killed
mid-write leaves only a hidden staging folder; the next write into that folder removes it once its pid is gone.
Out-of-space and permission failures while writing become one typed ``OutputError``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

from .errors import OutputError

PARTIAL = ".partial-"
_STALE = re.compile(r"^\..+\.partial-(\d+)-[0-9a-f]{8}$")
_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def sha256_file(path: Path) -> str:
    """sha256 of a file, or of a directory tree (e.g. .mlpackage) by relative path and content."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_partials(folder: Path) -> list[Path]:
    """Staging folders left by writers that were killed (their pid is gone); returns what was removed."""
    removed = []
    with contextlib.suppress(OSError):
        for p in Path(folder).iterdir():
            m = _STALE.match(p.name)
            if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
                _remove(p)
                removed.append(p)
    return removed


def output_error(exc: BaseException, where: Path) -> OutputError | None:
    """An OutputError when ``exc`` (or what it wraps: converters re-raise) is out-of-space or permission denied."""
    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 10:
        if isinstance(e, OSError) and e.errno in _SPACE:
            return OutputError(f"no space left writing {where} ({e.strerror or os.strerror(e.errno)})",
                               "free disk space or choose another --out folder; the previous file is untouched")
        if isinstance(e, OSError) and e.errno in _DENIED:
            return OutputError(f"cannot write {where}: {e.strerror or os.strerror(e.errno)}",
                               "choose a writable --out folder")
        e, seen = e.__cause__ or e.__context__, seen + 1
    return None


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on a folder (flock on the directory itself: no lock file left behind)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _replace(staged: Path, final: Path) -> None:
    if staged.is_dir() and final.exists() and not final.is_symlink():
        # os.replace cannot replace a non-empty directory: swap through a backup name.
        backup = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, backup)
        os.replace(staged, final)
        _remove(backup)
    else:
        os.replace(staged, final)


@contextlib.contextmanager
def staged_path(final: Path) -> Iterator[Path]:
    """Yield where to write ``final`` (same name, in a hidden staging folder beside it) and leave it there.

    On any failure the staging folder is removed and the previous ``final`` is untouched; on success the caller
    publishes it with ``publish`` (or ``discard`` to drop it).
    """
    final = Path(final)
    ensure_writable_dir(final.parent)
    remove_stale_partials(final.parent)
    stage = final.parent / f".{final.name}{PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        stage.mkdir()
    except OSError as e:
        raise (output_error(e, final.parent) or e) from None
    tmp = stage / final.name
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}")
    except BaseException as e:
        _remove(stage)
        err = output_error(e, final) if isinstance(e, Exception) else None
        if err is not None:
            raise err from None
        raise


def publish(*moves: tuple[Path, Path]) -> None:
    """Rename each staged path over its final path, in order, holding the final folder's lock."""
    if not moves:
        return
    folder = Path(moves[0][1]).parent
    try:
        with folder_lock(folder):
            for staged, final in moves:
                _replace(Path(staged), Path(final))
    except OSError as e:
        raise (output_error(e, folder) or e) from None
    finally:
        for staged, _ in moves:
            discard(staged)


def discard(staged: Path) -> None:
    """Remove a staged path and its staging folder (a no-op once published)."""
    staged = Path(staged)
    if staged.parent.name.startswith(".") and PARTIAL in staged.parent.name:
        _remove(staged.parent)


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a staged path for ``final``; on success it replaces ``final``, on any failure it is removed.

    Works for files and directories (.mlpackage). The previous ``final`` survives a failed write.
    """
    with staged_path(final) as tmp:
        yield tmp
    publish((tmp, Path(final)))


def write_text_atomic(final: Path, text: str) -> None:
    with atomic_path(final) as tmp:
        tmp.write_text(text)


def json_safe(obj: Any) -> Any:
    """JSON-safe: paths to str, NaN/inf to null (a percentile a phone does not report), tuples to lists, numpy
    scalars to Python."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json_atomic(final: Path, obj: Any) -> None:
    write_text_atomic(final, json.dumps(json_safe(obj), indent=2, sort_keys=False) + "\n")


def ensure_writable_dir(folder: Path, option: str = "--out") -> None:
    """Create ``folder`` if needed and check it can be written; ``option`` names the flag in the hint."""
    folder = Path(folder)
    hint = f"choose a writable {option} folder" if option == "--out" else f"choose a writable location for {option}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create output folder {folder}: {e.strerror or e}", hint) from None
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} is not a folder", hint)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {folder} is not writable", hint)
