"""Outputs: checked before any work starts, written atomically, never half-written, never over an input.

The rules every command that writes follows (README, "Bad input"):

* **Parent directories must exist.** No command creates directories implicitly (a typo would otherwise scatter
  new directory trees); a missing parent, a parent that is a file or a parent the user cannot write is refused
  up front by :func:`check_outputs`.
* **An output is never one of the command's inputs** (or inside an input directory, or a directory holding an
  input), with or without ``--force``: a failed replacement would destroy the only copy.
* **An existing output is replaced only with --force**, for every output (model files, bundles, reports, JSON,
  traces, metrics).
* **Atomic**: data goes to a temporary sibling ``.<name>.<pid>.<random>.tmp`` (``.tmpdir`` for directories) that is
  renamed over the target only when complete, so readers see the old output or the whole new one. On any error,
  Ctrl-C or SIGTERM the temporary is removed; one left by a killed run (``kill -9``: its process id is gone) is
  removed by the next write to the same output. Write errors (full disk, permissions) are one-line
  :class:`~snn_deploy.errors.UserError`\\ s.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import IO, Any

from snn_deploy.errors import UserError
from snn_deploy.interrupts import raise_if_interrupted

TMP_SUFFIXES = (".tmp", ".tmpdir")
HASH_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in chunks of :data:`HASH_CHUNK` bytes (never whole into memory)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@cache
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """Permissions a plain ``open`` / ``mkdir`` would give (temporary files are created private)."""
    return (0o777 if directory else 0o666) & ~_umask()


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _overlaps(out: Path, inp: Path) -> bool:
    """``out`` and ``inp`` are the same file, or one is inside the other (either may be a directory)."""
    a, b = out.resolve(), inp.resolve()
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def check_parent(path: Path) -> None:
    """The directory that will hold ``path`` exists, is a directory and is writable (see the module rules)."""
    try:
        _check_parent(path)
    except OSError as exc:  # a directory on the way the user cannot search
        raise UserError(f"cannot write {path}: {exc.strerror or exc} ({exc.filename}); choose an output in a "
                        "directory you can read and write") from None


def _check_parent(path: Path) -> None:
    parent = _absolute(path).parent
    shown = Path(path).parent
    if not parent.exists():
        ancestor = parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise UserError(f"cannot write {path}: {ancestor} is a file, not a directory; choose another output")
        raise UserError(f"cannot write {path}: directory {shown} does not exist; create it first (snn-deploy "
                        "never creates directories)")
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: {shown} is a file, not a directory; choose another output")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {path}: directory {shown} is not writable (read-only or no permission); "
                        "choose another output directory")


def check_outputs(*outputs: Path | None, inputs: Iterable[Path | None] = (), force: bool,
                  directory: bool = False, others: Iterable[Path | None] = (), force_name: str = "--force") -> None:
    """Refuse, before any work, every output that breaks the module rules; ``None`` entries are ignored.

    ``directory``: the outputs are directories (an existing file in their place is refused, and vice versa).
    ``others``: outputs of the same command checked by another call (of the other kind): these outputs must be
    neither one of them nor inside one. A path the user may not look at (a directory it cannot search) is refused
    in one line, like the others. ``force_name``: how the caller spells the permission to replace (the Python
    API's ``force=True``).
    """
    try:
        for out in outputs:
            for other in others:
                if out is not None and other is not None and _overlaps(Path(out), Path(other)):
                    raise UserError(f"outputs {other} and {out} overlap; choose a separate path for each")
        _check_outputs(outputs, inputs, force, directory, force_name)
    except OSError as exc:  # stat / resolve of a path in a directory the user cannot search
        where = exc.filename or next((p for p in outputs if p is not None), "")
        raise UserError(f"cannot check the output {where}: {exc.strerror or exc}; choose an output in a directory "
                        "you can read and write") from None


def _check_outputs(outputs: Iterable[Path | None], inputs: Iterable[Path | None], force: bool,
                   directory: bool, force_name: str) -> None:
    chosen = [Path(p) for p in outputs if p is not None]
    sources = [Path(p) for p in inputs if p is not None]
    for i, out in enumerate(chosen):
        for other in chosen[:i]:
            if _absolute(other) == _absolute(out):
                raise UserError(f"{out} is given as two different outputs; choose a separate path for each")
        for inp in sources:
            if _overlaps(out, inp):
                raise UserError(f"output {out} would overwrite the input {inp}; choose an output outside the "
                                "command's inputs (--force does not allow this)")
        if out.exists() or out.is_symlink():
            if out.is_dir() != directory:
                kind = "a directory" if out.is_dir() else "a file"
                raise UserError(f"output {out} exists and is {kind}; choose another path")
            if not force:
                raise UserError(f"{out} already exists; choose another output or pass {force_name} to replace it")
        check_parent(out)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(path: Path) -> None:
    """Remove temporaries of ``path`` left by killed runs (their process is gone); others' are left alone."""
    path = _absolute(path)
    prefix = f".{path.name}."
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return
    for entry in siblings:
        rest = entry.name[len(prefix):]
        if not entry.name.startswith(prefix) or not rest.endswith(TMP_SUFFIXES):
            continue
        pid = rest.split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def temporary_name(path: Path, suffix: str) -> Path:
    """``.<name>.<pid>.<random><suffix>`` beside ``path``: the pid lets later runs recognise abandoned ones."""
    path = _absolute(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def _write_error(path: Path, exc: OSError) -> UserError:
    return UserError(f"cannot write {path}: {exc.strerror or exc}; check free space and permissions, then run again")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary file name beside ``path`` for writers that take a name (h5py, NIR); when the block ends
    without error the file is synced and renamed over ``path``."""
    path = Path(path)
    check_parent(path)
    remove_stale(path)
    tmp = temporary_name(path, ".tmp")
    try:
        yield tmp
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, default_mode())
        raise_if_interrupted()
        os.replace(tmp, path)
    except OSError as exc:
        raise _write_error(path, exc) from None
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """Yield a binary file to fill; when the block ends without error it replaces ``path`` in one rename."""
    with atomic_path(path) as tmp, tmp.open("xb") as f:
        yield f


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    with atomic_file(path) as f:
        f.write(data)


def json_bytes(obj: Any) -> bytes:
    """Deterministic JSON (sorted keys, fixed indentation, trailing newline)."""
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def write_json_atomic(path: Path, obj: Any) -> None:
    """Atomic, deterministic JSON (see :func:`json_bytes`)."""
    write_bytes_atomic(path, json_bytes(obj))


@contextmanager
def atomic_directory(out: Path, *, force: bool) -> Iterator[Path]:
    """Yield a temporary sibling directory to fill; on success it replaces ``out`` in one rename.

    An existing ``out`` is refused unless ``force`` (then swapped out only after the new one is complete); on any
    error or interrupt the temporary directory is removed, so a failed run leaves nothing behind. Concurrent runs
    writing the same ``out`` each rename a complete directory; the last one wins, never a mix.
    """
    out = Path(out)
    if out.exists() and not force:
        raise UserError(f"{out} already exists; choose another output or pass --force to replace it")
    check_parent(out)
    remove_stale(out)
    tmp = temporary_name(out, ".tmpdir")
    try:
        tmp.mkdir(mode=0o700)
        tmp.chmod(default_mode(directory=True))
        yield tmp
        raise_if_interrupted()
        _swap_in(tmp, out)
    except OSError as exc:
        raise _write_error(out, exc) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside first and removed after."""
    for _ in range(8):  # another process may rename its own copy in between: retry, never merge
        if not (out.exists() or out.is_symlink()):
            try:
                tmp.rename(out)
                return
            except OSError:
                if not out.exists():
                    raise
                continue
        backup = temporary_name(out, ".tmpdir")
        try:
            out.rename(backup)
        except FileNotFoundError:
            continue
        try:
            tmp.rename(out)
        finally:
            shutil.rmtree(backup, ignore_errors=True) if backup.is_dir() else backup.unlink(missing_ok=True)
        return
    raise OSError(f"{out} kept changing while this run tried to replace it")
