"""Checkpoints: exact round trips, atomic writes, and clear refusals of damaged or foreign
files (truncated, flipped bytes, plain np.savez, pickles)."""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import signal
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from subprocess import PIPE

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_seq as ts
from tinygrad_seq import optim, serialization
from tinygrad_seq.nn import Linear, Parameter, Sequential

try:
    import fcntl
except ImportError:  # Windows: the clean-up of stale temporaries is POSIX only
    fcntl = None

# --------------------------------------------------------------------------- identity


def assert_identical(loaded, original):
    """Same structure, types and bits (NaN payloads and −0.0 included); Tensors load as arrays."""
    if isinstance(original, ts.Tensor):
        original = original.data
    if isinstance(original, np.ndarray):
        assert isinstance(loaded, np.ndarray), type(loaded)
        assert (loaded.dtype, loaded.shape) == (original.dtype, original.shape)
        assert np.ascontiguousarray(loaded).tobytes() == np.ascontiguousarray(original).tobytes()
    elif isinstance(original, np.generic):
        assert type(loaded) is type(original) and loaded.tobytes() == original.tobytes()
    elif isinstance(original, float):
        assert type(loaded) is float and struct.pack("<d", loaded) == struct.pack("<d", original)
    elif isinstance(original, dict):
        assert type(loaded) is dict and list(loaded) == list(original)
        for key in original:
            assert_identical(loaded[key], original[key])
    elif isinstance(original, list | tuple):
        assert type(loaded) is type(original) and len(loaded) == len(original)
        for a, b in zip(loaded, original, strict=True):
            assert_identical(a, b)
    else:
        assert type(loaded) is type(original) and loaded == original


DTYPES = [np.float32, np.float64, np.int64, np.bool_]


def any_arrays():
    """Arrays of the checkpoint dtypes, any values (NaN, ±inf, −0.0), 0-d and empty shapes."""
    return st.sampled_from(DTYPES).flatmap(
        lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0))
    )


keys = st.text(min_size=0, max_size=12)  # any text: '/', '..', '', unicode, '__tinygrad_seq__'


@given(st.dictionaries(keys, any_arrays(), max_size=6))
def test_state_dicts_round_trip_bit_identically(tmp_path_factory, state):
    path = tmp_path_factory.mktemp("ckpt") / "state.npz"
    ts.save(state, path)
    assert_identical(ts.load(path), state)


leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | any_arrays()
    | st.sampled_from(DTYPES)
    .flatmap(lambda dtype: hnp.from_dtype(np.dtype(dtype)))
    .map(lambda value: np.asarray(value)[()])
)
trees = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(keys | st.integers(-5, 5), children, max_size=3)
    ),
    max_leaves=12,
)


@given(st.dictionaries(keys, trees, max_size=4))
def test_nested_checkpoints_round_trip_bit_identically(tmp_path_factory, checkpoint):
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.npz"
    ts.save(checkpoint, path)
    assert_identical(ts.load(path), checkpoint)


def test_a_training_checkpoint_restores_model_and_optimizer(tmp_path):
    model = Sequential(Linear(3, 4, rng=np.random.default_rng(0)), Linear(4, 2))
    opt = optim.Adam(model.parameters(), lr=0.01)
    x = ts.randn(5, 3, rng=np.random.default_rng(1))
    model(x).sum().backward()
    opt.step()
    checkpoint = {"model": model.state_dict(), "optim": opt.state_dict(), "step": 12, "loss": 0.3}
    ts.save(checkpoint, str(tmp_path / "run.ckpt"))
    assert os.listdir(tmp_path) == ["run.ckpt"]  # the name as given, no temp file left

    loaded = ts.load(tmp_path / "run.ckpt")
    assert_identical(loaded, checkpoint)
    fresh = Sequential(Linear(3, 4, rng=np.random.default_rng(7)), Linear(4, 2))
    assert not np.array_equal(fresh(x).data, model(x).data)
    fresh.load_state_dict(loaded["model"])
    np.testing.assert_array_equal(fresh(x).data, model(x).data)
    fresh_opt = optim.Adam(fresh.parameters())
    fresh_opt.load_state_dict(loaded["optim"])
    assert fresh_opt.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


def test_tensors_and_parameters_load_as_arrays(tmp_path):
    ts.save({"p": Parameter(np.ones(2)), "t": ts.tensor([1, 2])}, tmp_path / "c.npz")
    loaded = ts.load(tmp_path / "c.npz")
    assert type(loaded["p"]) is np.ndarray and loaded["t"].dtype == np.int64


def test_the_file_is_an_ordinary_npz_with_readable_entry_names(tmp_path):
    ts.save({"model": {"cell.weight_ih": np.ones(2)}, "weird/key": np.zeros(1)}, tmp_path / "c")
    with np.load(tmp_path / "c", allow_pickle=False) as npz:
        names = set(npz.files)
    assert "model/cell.weight_ih" in names and "__tinygrad_seq__" in names
    assert "weird/key" not in names  # unsafe names get a numbered entry instead


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ({"a": {1, 2}}, r"cannot store the set at obj\['a'\]"),
        ({"a": np.array([None])}, r"array at obj\['a'\] has dtype object"),
        ({"a": {True: 1}}, "dict key True"),
        ({"a": [object()]}, r"object at obj\['a'\]\[0\]"),
    ],
)
def test_unstorable_values_are_refused_and_leave_the_file_alone(tmp_path, obj, match):
    path = tmp_path / "c.npz"
    ts.save({"old": np.ones(1)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=match):
        ts.save(obj, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["c.npz"]


def test_a_structure_that_contains_itself_is_refused(tmp_path):
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(TypeError, match="contains itself"):
        ts.save(loop, tmp_path / "c.npz")


# --------------------------------------------------------------------------- atomic writes


class _HalfWriter(io.FileIO):
    """A file whose write stores half the bytes and then fails, as a full disk would."""

    def write(self, data):
        super().write(bytes(data)[: len(data) // 2])
        raise OSError(28, "No space left on device")


def _crash_mid_write(monkeypatch):
    monkeypatch.setattr(serialization.os, "fdopen", lambda fd, mode: _HalfWriter(fd, "wb"))


def _crash_in_fsync(monkeypatch):
    def fail(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(serialization.os, "fsync", fail)


def _crash_in_rename(monkeypatch):
    def fail(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(serialization.os, "replace", fail)


@pytest.mark.parametrize("crash", [_crash_mid_write, _crash_in_fsync, _crash_in_rename])
def test_a_crash_while_saving_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch, crash):
    path = tmp_path / "model.npz"
    ts.save({"w": np.arange(3.0)}, path)
    before = path.read_bytes()
    crash(monkeypatch)
    with pytest.raises((OSError, KeyboardInterrupt)):
        ts.save({"w": np.arange(1000.0)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    np.testing.assert_array_equal(ts.load(path)["w"], np.arange(3.0))


def test_a_crash_on_a_first_save_leaves_no_file(tmp_path, monkeypatch):
    _crash_in_fsync(monkeypatch)
    with pytest.raises(OSError):
        ts.save({"w": np.ones(2)}, tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


# A save that hangs once its data is written (before fsync and rename), so the test can kill
# it with SIGKILL at a known point: no clean-up code of the writer runs.
_BLOCKED_SAVE = """
import sys, time
import numpy as np
import tinygrad_seq as ts
from tinygrad_seq import serialization

def hang(fd):
    print("written", flush=True)
    time.sleep(600)

serialization.os.fsync = hang
ts.save({"w": np.ones(1000)}, sys.argv[1])
"""


def start_blocked_save(path):
    writer = subprocess.Popen(
        [sys.executable, "-c", _BLOCKED_SAVE, str(path)], stdout=PIPE, text=True
    )
    assert writer.stdout.readline() == "written\n"
    return writer


def temporaries(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


posix_only = pytest.mark.skipif(
    fcntl is None, reason="stale temporaries are recognised with POSIX process ids and locks"
)


@posix_only
def test_a_save_killed_outright_leaves_a_temporary_file_the_next_save_removes(tmp_path):
    path = tmp_path / "model.npz"
    ts.save({"w": np.zeros(2)}, path)
    writer = start_blocked_save(path)
    writer.kill()  # SIGKILL
    writer.wait()
    writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    [leftover] = temporaries(tmp_path)
    assert leftover.startswith(f".model.npz.{writer.pid}.")
    np.testing.assert_array_equal(ts.load(path)["w"], np.zeros(2))  # the old checkpoint

    ts.save({"w": np.ones(2)}, path)
    assert os.listdir(tmp_path) == ["model.npz"]
    np.testing.assert_array_equal(ts.load(path)["w"], np.ones(2))


@posix_only
def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    path = tmp_path / "model.npz"
    writer = start_blocked_save(path)
    try:
        [theirs] = temporaries(tmp_path)
        ts.save({"w": np.ones(2)}, path)
        assert temporaries(tmp_path) == [theirs]
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()


@posix_only
def test_only_stale_temporaries_of_the_same_path_are_removed(tmp_path):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    gone = finished.pid
    names = {
        "stale": f".model.npz.{gone}.{'a' * 12}.tmp",
        "locked": f".model.npz.{gone}.{'b' * 12}.tmp",  # its id is gone, but a lock is held
        "alive": f".model.npz.{os.getpid()}.{'c' * 12}.tmp",
        "other path": f".other.npz.{gone}.{'d' * 12}.tmp",
        "not a temporary": f".model.npz.{gone}.{'e' * 12}.tmp.keep",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"half a checkpoint")
    with open(tmp_path / names["locked"], "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        ts.save({"w": np.ones(2)}, tmp_path / "model.npz")
    kept = {name for key, name in names.items() if key != "stale"}
    assert set(os.listdir(tmp_path)) == {"model.npz", *kept}


# --------------------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def saved_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.npz"
    model = Linear(3, 2, rng=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(ts.ones(1, 3)).sum().backward()
    opt.step()
    ts.save({"model": model.state_dict(), "optim": opt.state_dict(), "step": 1}, path)
    return path.read_bytes()


def _load_error(path):
    with pytest.raises(ValueError) as info:
        ts.load(path)
    assert repr(str(path)) in str(info.value)  # names the path
    return str(info.value)


@given(st.data())
def test_a_truncated_file_is_refused(tmp_path_factory, saved_bytes, data):
    cut = data.draw(st.integers(0, len(saved_bytes) - 1), label="cut")
    path = tmp_path_factory.mktemp("cut") / "cut.npz"
    path.write_bytes(saved_bytes[:cut])
    message = _load_error(path)
    assert any(word in message for word in ("truncated", "empty", "not an .npz")), message


@given(st.data())
def test_any_flipped_byte_is_detected(tmp_path_factory, saved_bytes, data):
    position = data.draw(st.integers(0, len(saved_bytes) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="xor mask")
    damaged = bytearray(saved_bytes)
    damaged[position] ^= mask
    path = tmp_path_factory.mktemp("flip") / "flip.npz"
    path.write_bytes(bytes(damaged))
    _load_error(path)


def test_a_checksum_mismatch_is_named(tmp_path, saved_bytes):
    # Flip a byte of array data: zip's structure is intact, only the checksum notices.
    damaged = bytearray(saved_bytes)
    damaged[saved_bytes.index(b"\x93NUMPY") + 200] ^= 1
    path = tmp_path / "bad.npz"
    path.write_bytes(bytes(damaged))
    assert "SHA-256 checksum does not match" in _load_error(path)


def test_a_plain_np_savez_file_is_refused(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, weight=np.ones(3))
    message = _load_error(path)
    assert "not written by tinygrad_seq.save" in message and "np.load" in message


def test_an_empty_file_and_other_formats_are_named(tmp_path):
    cases = {
        "empty.npz": (b"", "empty"),
        "notes.npz": (b"just some text\n", "not an .npz"),
        "pickle.npz": (pickle.dumps({"w": 1}), "a pickle"),
    }
    for name, (content, expected) in cases.items():
        (tmp_path / name).write_bytes(content)
        assert expected in _load_error(tmp_path / name)
    np.save(tmp_path / "single.npy", np.ones(2))
    assert "single .npy array" in _load_error(tmp_path / "single.npy")


_unpickled = []


def _record_unpickling():
    _unpickled.append(True)
    return "payload"


class _Payload:
    """Unpickling this calls a function: what a malicious file would do."""

    def __reduce__(self):
        return (_record_unpickling, ())


def test_a_pickle_inside_an_npz_is_refused_and_never_run(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, w=np.array([_Payload()], dtype=object))
    assert "pickled Python objects (entry 'w.npy')" in _load_error(path)
    assert not _unpickled


def test_a_pickle_in_a_file_that_looks_like_ours_is_refused(tmp_path, monkeypatch):
    # An attacker can compute SHA-256 too: the pickle refusal must not rely on the checksum.
    write_array = np.lib.format.write_array

    def write_with_pickle(file, array, allow_pickle=False):
        write_array(file, array, allow_pickle=True)

    monkeypatch.setattr(np.lib.format, "write_array", write_with_pickle)
    monkeypatch.setattr(serialization, "_ARRAY_KINDS", "biufcO")
    path = tmp_path / "evil.npz"
    ts.save({"w": np.array([_Payload()], dtype=object)}, path)
    monkeypatch.undo()
    assert "pickled Python objects (entry 'w.npy')" in _load_error(path)
    assert not _unpickled


def test_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        ts.load(tmp_path / "nope.npz")


def test_float_values_survive_exactly(tmp_path):
    values = {"third": 1 / 3, "nan": math.nan, "neg_zero": -0.0, "inf": -math.inf, "tiny": 5e-324}
    ts.save(values, tmp_path / "f.npz")
    assert_identical(ts.load(tmp_path / "f.npz"), values)


def test_a_torch_save_file_is_refused_without_unpickling(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    assert "a zip file but not an .npz" in _load_error(path)


def test_python_float_nans_keep_their_payload_bits(tmp_path):
    # float.hex writes every NaN as "nan": the payload must survive some other way.
    payloads = ["010000000000f87f", "000000000000f87f", "000000000000f8ff", "0100000000f0ff7f"]
    values = [struct.unpack("<d", bytes.fromhex(bits))[0] for bits in payloads]
    ts.save({"nans": values, "one": 1.0}, tmp_path / "nan.ckpt")
    loaded = ts.load(tmp_path / "nan.ckpt")
    assert [struct.pack("<d", v).hex() for v in loaded["nans"]] == payloads
    assert loaded["one"] == 1.0 and type(loaded["one"]) is float


# --------------------------------------------------------------------------- hostile files
# Built here, byte by byte: a file from someone else may carry a valid checksum trailer
# (SHA-256 is no secret), so every refusal below must hold with and without one.


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def meta_bytes(tree_json: str) -> bytes:
    """The structure entry, from the JSON text of its tree (deep trees are written as text)."""
    text = f'{{"format": "{serialization.FORMAT}", "version": {serialization.VERSION}, '
    text += f'"tree": {tree_json}}}'
    return npy_bytes(np.frombuffer(text.encode(), dtype=np.uint8))


def hostile_file(path, entries, trailer=True, deflated=()):
    """A zip of ``entries`` (name → bytes), with save's checksum trailer if ``trailer``; the
    entries named in ``deflated`` are compressed."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            method = zipfile.ZIP_DEFLATED if name in deflated else zipfile.ZIP_STORED
            archive.writestr(name, content, compress_type=method)
        if trailer:
            archive.comment = serialization._TRAILER_PREFIX + b"0" * 64
    data = bytearray(buffer.getvalue())
    if trailer:
        data[-64:] = hashlib.sha256(data[: -len(archive.comment)]).hexdigest().encode()
    path.write_bytes(bytes(data))
    return path


def one_array_file(path, array_bytes, **options):
    tree = '{"dict": [["w", {"array": "w"}]]}'
    entries = {"__tinygrad_seq__.npy": meta_bytes(tree), "w.npy": array_bytes}
    return hostile_file(path, entries, **options)


def peak_memory_of(function):
    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_hostile_file_helper_builds_loadable_files(tmp_path):
    # The refusals below are about the hostile part, not the way the files are built.
    path = one_array_file(tmp_path / "fine.npz", npy_bytes(np.arange(4.0)))
    np.testing.assert_array_equal(ts.load(path)["w"], np.arange(4.0))


@pytest.mark.parametrize("trailer", [True, False], ids=["with-checksum", "without-checksum"])
def test_a_compressed_entry_is_refused_before_it_is_inflated(tmp_path, trailer):
    zeros = npy_bytes(np.zeros(2_500_000))  # 20 MB that deflate packs into ~20 kB
    path = one_array_file(tmp_path / "bomb.npz", zeros, trailer=trailer, deflated={"w.npy"})
    assert path.stat().st_size < 100_000
    message = []
    peak = peak_memory_of(lambda: message.append(_load_error(path)))
    assert "compressed entry 'w.npy' (deflate)" in message[0]
    assert peak < 2_000_000, f"load allocated {peak:,} bytes: it inflated the entry"


@pytest.mark.parametrize("trailer", [True, False], ids=["with-checksum", "without-checksum"])
def test_a_header_declaring_a_huge_shape_is_refused_before_allocating(tmp_path, trailer):
    header = io.BytesIO()
    fields = {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    np.lib.format.write_array_header_1_0(header, fields)
    path = one_array_file(tmp_path / "huge.npz", header.getvalue() + bytes(16), trailer=trailer)
    message = []
    peak = peak_memory_of(lambda: message.append(_load_error(path)))
    assert "declares shape (1000000000000,) of float64" in message[0]
    assert "holds 16 bytes" in message[0]
    assert peak < 1_000_000


@pytest.mark.parametrize(
    ("node", "why"),
    [
        ('{"array": ["w"]}', "bad structure node"),  # an unhashable entry name
        ('{"float": "0x1p99999"}', "bad structure node"),  # overflows a float
        ('{"float": "ten"}', "bad structure node"),
        ("1" * 5000, "not valid JSON"),  # more digits than Python converts
    ],
)
def test_a_bad_structure_node_is_a_value_error(tmp_path, node, why):
    entries = {"__tinygrad_seq__.npy": meta_bytes(node)}
    assert why in _load_error(hostile_file(tmp_path / "bad.npz", entries))


def nested_lists(depth: int):
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_save_and_load_bound_the_nesting_the_same_way(tmp_path):
    limit = serialization.MAX_NESTING
    deepest = nested_lists(limit)
    ts.save(deepest, tmp_path / "deepest.npz")
    assert ts.load(tmp_path / "deepest.npz") == deepest

    path = tmp_path / "c.npz"
    ts.save({"old": np.ones(1)}, path)
    before = path.read_bytes()
    for depth in (limit + 1, 600, 5000):  # 600 once hit Python's recursion limit
        with pytest.raises(ValueError, match=f"more than {limit} levels deep"):
            ts.save(nested_lists(depth), path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["c.npz", "deepest.npz"]


@pytest.mark.parametrize("depth", [serialization.MAX_NESTING + 1, 495, 100_000])
def test_load_refuses_a_structure_nested_too_deep(tmp_path, depth):
    tree = '{"list": [' * depth + "1" + "]}" * depth
    entries = {"__tinygrad_seq__.npy": meta_bytes(tree)}
    message = _load_error(hostile_file(tmp_path / "deep.npz", entries))
    assert f"more than {serialization.MAX_NESTING} levels deep" in message
