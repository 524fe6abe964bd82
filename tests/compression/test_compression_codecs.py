"""Byte codecs: round trips, identity, corrupt input, and the layer's import rule."""

from __future__ import annotations

import ast
import struct
import types
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlake.compression as compression
from tensorlake.compression import BYTE_CODECS, compress, decompress
from tensorlake.errors import FormatError

CODECS = [None, *BYTE_CODECS]


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=4096), codec=st.sampled_from(CODECS))
def test_round_trip(data: bytes, codec: str | None) -> None:
    packed = compress(data, codec)
    assert isinstance(packed, bytes)
    assert decompress(packed, codec) == data


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=512), codec=st.sampled_from(CODECS))
def test_accepts_memoryview_and_bytearray(data: bytes, codec: str | None) -> None:
    packed = compress(memoryview(data), codec)
    assert decompress(bytearray(packed), codec) == data
    assert decompress(memoryview(packed), codec) == data


def test_identity_returns_bytes() -> None:
    assert compress(bytearray(b"abc"), None) == b"abc"
    assert type(compress(memoryview(b"abc"), None)) is bytes
    assert type(decompress(bytearray(b"abc"), None)) is bytes


def test_lz4_shrinks_redundant_data() -> None:
    data = b"tensorlake " * 1000
    assert len(compress(data, "lz4")) < len(data) // 20


@pytest.mark.parametrize("codec", ["zstd", "LZ4", "", "jpeg"])
def test_unknown_codec_is_value_error(codec: str) -> None:
    with pytest.raises(ValueError, match="lz4"):
        compress(b"x", codec)
    with pytest.raises(ValueError, match="unknown byte codec"):
        decompress(b"x", codec)


def _corrupt_inputs() -> list[bytes]:
    good = compress(bytes(range(256)) * 20, "lz4")
    return [
        b"",
        b"\x01\x02",  # shorter than the size header
        good[:-7],  # truncated block
        good[:4],  # size header, no block
        struct.pack("<I", 10) + b"\xff" * 12,  # garbage block
        struct.pack("<I", len(bytes(range(256)) * 20) + 1) + good[4:],  # wrong size
        struct.pack("<I", 2**31) + b"\x00" * 8,  # absurd size: refused before allocating
    ]


@pytest.mark.parametrize("data", _corrupt_inputs())
def test_corrupt_lz4_is_format_error(data: bytes) -> None:
    with pytest.raises(FormatError, match="lz4"):
        decompress(data, "lz4")


def test_package_all_is_sorted_and_complete() -> None:
    assert compression.__all__ == sorted(compression.__all__)
    for name in compression.__all__:
        assert hasattr(compression, name), name
    public = {
        n
        for n, v in vars(compression).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType)
    }
    assert public - {"annotations"} == set(compression.__all__)


def test_layer_imports_only_errors_from_tensorlake() -> None:
    package = Path(compression.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("tensorlake"):
                    allowed = name == "tensorlake.errors" or name.startswith(
                        "tensorlake.compression"
                    )
                    assert allowed, f"{path.name} imports {name}"
