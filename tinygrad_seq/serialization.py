"""Checkpoints: ``save(obj, path)`` and ``load(path)`` in one ``.npz`` file, without pickle.

``obj`` is a state dict (name → array or Tensor) or a nested checkpoint such as
``{'model': model.state_dict(), 'optim': opt.state_dict(), 'step': 12, 'loss': 0.3}``:
dicts (with str or int keys), lists, tuples, arrays, Tensors, numpy scalars, and the Python
values None, bool, int, float and str, nested in any way up to 100 levels deep.

The file is an ordinary ``.npz`` (``np.load`` opens it): one ``.npy`` entry per array,
named after its place in ``obj`` where that name is safe (``model/weight.npy``), and an
entry ``__tinygrad_seq__.npy`` holding, as UTF-8 JSON in a uint8 array, the structure and
every non-array value. Nothing is pickled, and loading reads with ``allow_pickle=False``:
unpickling a file from someone else can run any code they wrote into it.

Three promises, each tested:

- **Atomic**: the file is written to a temporary file in the same directory, flushed to
  disk (fsync) and renamed over ``path`` (``os.replace``, atomic on POSIX and Windows). A
  crash leaves either the old checkpoint or the new one, never half of one. A writer killed
  outright (``kill -9``, power loss) cannot remove its temporary file, so its name carries
  the writer's process id and the writer holds a lock on it; the next save of the same path
  removes the temporary files of that path whose writer is gone (POSIX).
- **Checked**: the zip comment at the very end of the file holds the SHA-256 of every byte
  before it, so any truncation or flipped byte is detected on load, not just the ones zip's
  CRC-32 or numpy's header parser would notice.
- **Exact**: loading gives back numpy arrays with the same dtype, shape and bits, and the
  same Python values (floats exactly, via ``float.hex``, a NaN by its bits), dicts, lists
  and tuples.

Loading a file from someone else is safe as well as checked: the checksum only proves the
file is intact (an attacker can compute SHA-256 too), so every entry is judged from its
headers before it is read. A compressed entry (``save`` never compresses; a small deflated
file can inflate to gigabytes) or an entry whose ``.npy`` header declares more bytes than the
entry holds (shape (10¹²,): no allocation is attempted) is refused with a ValueError, and
dicts, lists and tuples nest at most :data:`MAX_NESTING` levels deep, on both sides: ``save``
refuses what ``load`` would refuse.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import reprlib
import secrets
import struct
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from .tensor import Tensor

try:
    import fcntl  # POSIX file locks
except ImportError:  # Windows: no stale-temporary clean-up (see _remove_stale_temporaries)
    fcntl = None  # type: ignore[assignment]

__all__ = ["load", "save"]

FORMAT = "tinygrad_seq.checkpoint"
VERSION = 1
META_ENTRY = "__tinygrad_seq__"
# Dicts, lists and tuples inside one another: real checkpoints use a handful of levels; the
# bound keeps a hostile file's structure (and the recursion that rebuilds it) small.
MAX_NESTING = 100

# The zip comment: a fixed prefix and the hex SHA-256 of all the bytes before the comment.
_TRAILER_PREFIX = b"tinygrad_seq sha256 "
_TRAILER_LENGTH = len(_TRAILER_PREFIX) + 64
_EOCD_SIGNATURE = b"PK\x05\x06"  # zip's end-of-central-directory record (22 bytes + comment)
_EOCD_SIZE = 22

_ARRAY_KINDS = "biufc"  # bool, integers, floats, complex: all that npy stores without pickle
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\-]+")

_PICKLED = (
    "holds pickled Python objects (entry {name!r}); refusing to load it, because unpickling "
    "can run arbitrary code"
)
_TRUNCATED = (
    "is truncated or corrupted (its end is missing or damaged: an interrupted write, copy or "
    "download?)"
)
_TOO_DEEP = (
    f"nests dicts, lists and tuples more than {MAX_NESTING} levels deep; save never writes "
    "such a file"
)

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- save


def save(obj: Any, path: PathLike) -> None:
    """Write ``obj`` (a state dict or nested checkpoint) to ``path`` atomically.

    The file name is used exactly as given (no ``.npz`` is appended). Raises TypeError,
    naming the place in ``obj``, for a value that cannot be stored without pickle (an
    object array, a set, a custom class); ``path`` is then left untouched.
    """
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, (), arrays, set())
    meta = {"format": FORMAT, "version": VERSION, "tree": tree}
    arrays[META_ENTRY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    _write_atomically(path, _zip_with_checksum(arrays))


def _encode(
    value: Any, where: tuple[Any, ...], arrays: dict[str, np.ndarray], path_ids: set[int]
) -> Any:
    """The JSON tree for ``value``; its arrays are added to ``arrays`` under fresh names.

    Tree nodes: JSON null/true/false/int/str stand for themselves; a float is
    ``{"float": hex}``, a NaN ``{"float_bits": hex of its 8 bytes}`` (``float.hex`` drops a
    NaN's payload); ``{"array": name}`` and ``{"scalar": name}`` (a numpy scalar) point to
    entries; ``{"dict": [[key, node], ...]}``, ``{"list": [...]}``, ``{"tuple": [...]}``.
    """
    if isinstance(value, Tensor):
        value = value.data
    # Before the Python types: np.float64 is a float subclass, and must stay np.float64.
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        if array.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(
                f"save: the array at {_describe(where)} has dtype {array.dtype}; only bool, "
                "integer, float and complex arrays can be stored without pickle"
            )
        name = _entry_name(where, arrays)
        arrays[name] = array
        return {"scalar" if isinstance(value, np.generic) else "array": name}
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if value != value:  # NaN: keep its payload bits, which float.hex drops
            return {"float_bits": struct.pack("<d", value).hex()}
        return {"float": float(value).hex()}
    if isinstance(value, Mapping | list | tuple):
        if id(value) in path_ids:
            raise TypeError(f"save: the value at {_describe(where)} contains itself")
        if len(where) >= MAX_NESTING:
            raise ValueError(
                f"save: dicts, lists and tuples are nested more than {MAX_NESTING} levels deep "
                f"(at {_describe(where[:4])}...); load refuses such files, so save does too"
            )
        path_ids.add(id(value))
        try:
            if isinstance(value, Mapping):
                items = []
                for key, item in value.items():
                    if isinstance(key, bool) or not isinstance(key, str | int):
                        raise TypeError(
                            f"save: dict key {key!r} at {_describe(where)} is a "
                            f"{type(key).__name__}; keys must be str or int"
                        )
                    items.append([key, _encode(item, (*where, key), arrays, path_ids)])
                return {"dict": items}
            kind = "list" if isinstance(value, list) else "tuple"
            return {
                kind: [_encode(item, (*where, k), arrays, path_ids) for k, item in enumerate(value)]
            }
        finally:
            path_ids.discard(id(value))
    raise TypeError(
        f"save: cannot store the {type(value).__name__} at {_describe(where)} without pickle; "
        "supported are dicts, lists, tuples, arrays, Tensors, numpy scalars, None, bool, int, "
        "float and str"
    )


def _entry_name(where: tuple[Any, ...], taken: Mapping[str, Any]) -> str:
    """A readable entry name (``model/cell.weight``) where it is safe, else a numbered one."""
    parts = [str(key) for key in where]
    name = "/".join(parts)
    readable = bool(parts) and all(_SAFE_NAME.fullmatch(p) and p not in (".", "..") for p in parts)
    if readable and name not in taken and name != META_ENTRY:
        return name
    number = len(taken)
    while f"__array_{number}__" in taken:  # a user's key may look like a numbered name
        number += 1
    return f"__array_{number}__"


def _describe(where: tuple[Any, ...]) -> str:
    return "the top level" if not where else "obj" + "".join(f"[{key!r}]" for key in where)


def _zip_with_checksum(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The bytes of an ``.npz`` of ``arrays`` whose zip comment is the SHA-256 of the rest."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, array, allow_pickle=False)
        # A placeholder of the final length, so the comment-length field is already right.
        archive.comment = _TRAILER_PREFIX + b"0" * 64
    data = bytearray(buffer.getbuffer())
    digest = hashlib.sha256(data[:-_TRAILER_LENGTH]).hexdigest().encode("ascii")
    data[-64:] = digest
    return bytes(data)


def _write_atomically(path: str, data: bytes) -> None:
    """Replace ``path`` by a file holding ``data``, all at once or not at all."""
    directory, name = os.path.split(os.path.abspath(path))
    _remove_stale_temporaries(directory, name)
    temp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    # os.open with mode 0o666 lets the umask decide the permissions, as for any new file.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        if fcntl is not None:  # held until the file is closed, or the process dies
            fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())  # on disk before the rename makes it the checkpoint
        os.replace(temp, path)
    except BaseException:
        try:
            os.remove(temp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _remove_stale_temporaries(directory: str, name: str) -> None:
    """Delete the temporary files that earlier saves of ``name`` left behind when killed.

    One is stale when its writer (the process id in its name) is not alive AND nobody holds
    its lock: the id alone could belong to another machine's or container's process, the
    lock alone is free for a moment after the writer creates the file. POSIX only: on
    Windows ``os.kill(pid, 0)`` would terminate the process instead of probing it.
    """
    if fcntl is None:
        return
    ours = re.compile(rf"\.{re.escape(name)}\.(\d+)\.[0-9a-f]{{12}}\.tmp")
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        match = ours.fullmatch(entry)
        temp = os.path.join(directory, entry)
        if match and not _process_alive(int(match[1])) and not _locked(temp):
            try:
                os.remove(temp)
            except OSError:  # removed by another save meanwhile, or not ours to remove
                pass


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):  # no such process (or no such process id)
        return False
    except OSError:  # PermissionError: it exists, and belongs to another user
        return True
    return True


def _locked(path: str) -> bool:
    """Whether some process holds the lock of the file at ``path`` (or it cannot be checked)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX; Windows cannot open a directory)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- load


def load(path: PathLike) -> Any:
    """Read a checkpoint written by :func:`save`: arrays come back as numpy arrays.

    Raises ValueError, naming ``path`` and the problem, for an empty, truncated or
    corrupted file, a file not written by ``save`` (a plain ``np.savez`` file, a
    ``torch.save`` pickle, ...), an ``.npz`` holding pickled objects, which is never
    unpickled, and what only a hostile file holds: compressed entries (never inflated),
    array headers that declare more bytes than their entry has (never allocated), and
    structures nested more than :data:`MAX_NESTING` levels deep.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        data = file.read()
    _check_container(path, data)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        meta = _read_meta(path, archive, len(data))
        arrays = {
            name[: -len(".npy")]: _read_array(path, archive, name, len(data))
            for name in archive.namelist()
            if name != META_ENTRY + ".npy"
        }
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise ValueError(f"load: {path!r} is a corrupted checkpoint: {error}") from error
    names = set(arrays)
    try:
        value = _decode(path, meta["tree"], arrays, names, 1)
    except RecursionError:
        raise ValueError(f"load: {path!r} {_TOO_DEEP}") from None
    if names:
        raise ValueError(
            f"load: {path!r} is inconsistent: entries {sorted(names)} are not part of the "
            "stored structure"
        )
    return value


def _check_container(path: str, data: bytes) -> None:
    """Refuse anything but an intact file from :func:`save`, saying what it looks like."""
    if not data:
        raise ValueError(f"load: {path!r} is empty (0 bytes); the write that made it failed")
    if not data.startswith(b"PK\x03\x04"):
        if data.startswith(b"\x93NUMPY"):
            looks = "a single .npy array (np.save), not a checkpoint"
        elif data[:1] == b"\x80":
            looks = "a pickle (e.g. from torch.save or pickle.dump), which is never loaded"
        else:
            looks = "not an .npz (zip) file at all"
        raise ValueError(f"load: {path!r} was not written by tinygrad_seq.save: it is {looks}")
    trailer = data[-_TRAILER_LENGTH:]
    eocd = data[-_TRAILER_LENGTH - _EOCD_SIZE : -_TRAILER_LENGTH]
    is_ours = (
        trailer.startswith(_TRAILER_PREFIX)
        and eocd.startswith(_EOCD_SIGNATURE)
        and int.from_bytes(eocd[-2:], "little") == _TRAILER_LENGTH
    )
    if not is_ours:
        raise ValueError(f"load: {path!r} {_diagnose_foreign(data)}")
    expected = trailer[len(_TRAILER_PREFIX) :]
    actual = hashlib.sha256(data[:-_TRAILER_LENGTH]).hexdigest().encode("ascii")
    if actual != expected:
        raise ValueError(
            f"load: {path!r} is corrupted: its SHA-256 checksum does not match its contents "
            "(the file changed after it was written: a disk, copy or transfer error)"
        )


def _diagnose_foreign(data: bytes) -> str:
    """Why a zip file without our checksum trailer is refused: truncated, pickled, or foreign."""
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except Exception:
        return _TRUNCATED
    listed = f"entries {sorted(names)[:5]}"
    if not all(name.endswith(".npy") for name in names):
        return (
            f"was not written by tinygrad_seq.save: it is a zip file but not an .npz ({listed}; "
            "a torch.save file, perhaps? It is never unpickled here)"
        )
    archive = zipfile.ZipFile(io.BytesIO(data))
    for info in archive.infolist():
        problem = _entry_problem(archive, info, len(data))
        if problem is not None:
            return problem
        try:
            with archive.open(info) as entry:
                np.lib.format.read_array(entry, allow_pickle=False)
        except Exception:
            return _TRUNCATED
    if META_ENTRY + ".npy" in names:
        return "is truncated or corrupted: its SHA-256 checksum trailer is missing"
    return (
        f"was not written by tinygrad_seq.save ({listed}, no checksum or structure entry); "
        "if it is a plain np.savez file, read it with np.load(path)"
    )


def _entry_problem(archive: zipfile.ZipFile, info: zipfile.ZipInfo, file_size: int) -> str | None:
    """Why an entry cannot be read safely, judged from its zip and ``.npy`` headers alone.

    Nothing is inflated or allocated: a compressed entry is refused unread, and the array's
    declared shape and dtype must account for exactly the bytes the entry holds.
    """
    name = info.filename
    if info.compress_type != zipfile.ZIP_STORED:
        method = zipfile.compressor_names.get(info.compress_type, str(info.compress_type))
        return (
            f"has a compressed entry {name!r} ({method}); save never compresses, and it is "
            "not inflated (a small compressed file can expand to gigabytes); if it is an "
            "np.savez_compressed file you trust, read it with np.load(path)"
        )
    if info.file_size != info.compress_size or info.file_size > file_size:
        return (
            f"is corrupted: entry {name!r} declares {info.file_size:,} bytes "
            f"({info.compress_size:,} stored) in a file of {file_size:,} bytes"
        )
    try:
        with archive.open(info) as entry:
            version = np.lib.format.read_magic(entry)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(entry)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(entry)
            else:
                return f"has an entry {name!r} in .npy format {version}, which save never writes"
            data_size = info.file_size - entry.tell()
    except (ValueError, EOFError, OSError, zipfile.BadZipFile) as error:
        return f"is corrupted: entry {name!r} has no valid .npy header ({error})"
    if dtype.hasobject:
        return _PICKLED.format(name=name)
    if dtype.kind not in _ARRAY_KINDS:
        return f"has an entry {name!r} of dtype {dtype}, which save never writes"
    declared = math.prod(shape) * dtype.itemsize
    if declared != data_size:
        return (
            f"is truncated or corrupted: entry {name!r} declares shape {shape} of {dtype} "
            f"({declared:,} bytes) but holds {data_size:,} bytes of data"
        )
    return None


def _read_array(path: str, archive: zipfile.ZipFile, name: str, file_size: int) -> np.ndarray:
    if not name.endswith(".npy"):
        raise ValueError(f"load: {path!r} is inconsistent: entry {name!r} is not a .npy array")
    info = archive.getinfo(name)
    problem = _entry_problem(archive, info, file_size)
    if problem is not None:
        raise ValueError(f"load: {path!r} {problem}")
    with archive.open(info) as entry:
        return np.lib.format.read_array(entry, allow_pickle=False)


def _read_meta(path: str, archive: zipfile.ZipFile, file_size: int) -> dict[str, Any]:
    try:
        raw = _read_array(path, archive, META_ENTRY + ".npy", file_size)
    except KeyError:
        raise ValueError(f"load: {path!r} has no {META_ENTRY!r} entry") from None
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except RecursionError:
        raise ValueError(f"load: {path!r} {_TOO_DEEP}") from None
    except ValueError as error:  # bad UTF-8, bad JSON, an integer of too many digits
        raise ValueError(
            f"load: {path!r}: its structure entry is not valid JSON: {error}"
        ) from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "tree" not in meta:
        raise ValueError(f"load: {path!r} was not written by tinygrad_seq.save")
    if meta.get("version") != VERSION:
        raise ValueError(
            f"load: {path!r} has checkpoint format version {meta.get('version')!r}; this "
            f"tinygrad_seq reads version {VERSION} (upgrade tinygrad_seq to read it)"
        )
    return meta


def _decode(
    path: str, node: Any, arrays: Mapping[str, np.ndarray], unused: set[str], depth: int
) -> Any:
    """Rebuild the value of a tree node (see :func:`_encode`); ``unused`` loses each entry used.

    ``depth`` counts the dicts, lists and tuples this node sits in, itself included if it is one.
    """
    if node is None or isinstance(node, bool | int | str):
        return node
    if isinstance(node, dict) and len(node) == 1:
        ((kind, body),) = node.items()
        if kind == "float" and isinstance(body, str):
            try:
                return float.fromhex(body)
            except (ValueError, OverflowError):
                pass  # refused below
        if kind == "float_bits" and isinstance(body, str) and re.fullmatch("[0-9a-f]{16}", body):
            return struct.unpack("<d", bytes.fromhex(body))[0]
        if kind in ("array", "scalar") and isinstance(body, str) and body in unused:
            unused.discard(body)
            return arrays[body][()] if kind == "scalar" else arrays[body]
        if kind in ("dict", "list", "tuple") and depth > MAX_NESTING:
            raise ValueError(f"load: {path!r} {_TOO_DEEP}")
        if kind == "dict" and isinstance(body, list):
            if all(isinstance(item, list) and len(item) == 2 and _is_key(item[0]) for item in body):
                return {key: _decode(path, item, arrays, unused, depth + 1) for key, item in body}
        if kind in ("list", "tuple") and isinstance(body, list):
            items = [_decode(path, item, arrays, unused, depth + 1) for item in body]
            return items if kind == "list" else tuple(items)
    raise ValueError(
        f"load: {path!r} is inconsistent: bad structure node {reprlib.repr(node)[:80]}"
    )


def _is_key(key: Any) -> bool:
    return isinstance(key, str) or (isinstance(key, int) and not isinstance(key, bool))
