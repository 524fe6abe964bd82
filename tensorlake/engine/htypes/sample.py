"""``tl.read``: a file's compressed bytes, passed through to storage without re-encoding."""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

import numpy as np

from tensorlake.compression import (
    decode_image,
    detect_image_format,
    image_exif,
    read_image_shape,
)
from tensorlake.errors import SampleError
from tensorlake.storage import from_url

__all__ = ["Sample", "read"]


class Sample:
    """A compressed sample (an image file, usually) read lazily from a path or URL.

    When it is appended to a tensor whose ``sample_compression`` matches the file's
    format, its bytes are stored unchanged: no decode, no re-encode, no quality loss.
    Otherwise it is decoded and recompressed as the tensor asks.
    """

    def __init__(
        self, path: str | os.PathLike | None = None, *, data: bytes | None = None, creds=None
    ) -> None:
        if (path is None) == (data is None):
            raise SampleError("Sample needs exactly one of path or data.")
        self.path = None if path is None else str(path)
        self._creds = creds
        if data is not None:
            self.__dict__["buffer"] = bytes(data)

    def __repr__(self) -> str:
        return f"Sample({self.path!r})" if self.path else f"Sample(<{len(self.buffer)} bytes>)"

    @cached_property
    def buffer(self) -> bytes:
        """The file's bytes, exactly as stored at the source."""
        assert self.path is not None
        if "://" not in self.path or self.path.startswith("file://"):
            try:
                with open(self.path.removeprefix("file://"), "rb") as f:
                    return f.read()
            except OSError as err:
                raise SampleError(f"cannot read {self.path!r}: {err.strerror}") from err
        parent, _, name = self.path.rpartition("/")
        return from_url(parent, creds=self._creds, read_only=True).get(name)

    @cached_property
    def compression(self) -> str | None:
        """The detected format ('jpeg', 'png') or None for unknown bytes."""
        return detect_image_format(self.buffer)

    @cached_property
    def shape(self) -> tuple[int, ...]:
        return read_image_shape(self.buffer)

    @property
    def array(self) -> np.ndarray:
        return decode_image(self.buffer)

    @property
    def info(self) -> dict[str, Any]:
        """What the file says of itself, as Deep Lake's ``sample_info`` has it: ``exif``,
        ``shape``, ``format``, ``filename`` (when read from a path), ``modified``."""
        fmt = self.compression
        info: dict[str, Any] = {
            "exif": image_exif(self.buffer) if fmt else {},
            "shape": list(self.shape) if fmt else None,
            "format": fmt,
        }
        if self.path:
            info["filename"] = self.path
        info["modified"] = False
        return info


def read(path: str | os.PathLike, verify: bool = False, creds: dict | None = None) -> Sample:
    """Read a file (local path, ``file://``, ``s3://`` or ``http(s)://``) as a sample.

    Example::

        ds.images.append(tl.read("cat.jpg"))   # stored as the original JPEG bytes

    With ``verify=True`` the file is fetched and its header checked now rather than at
    append time.
    """
    sample = Sample(path, creds=creds)
    if verify:
        if sample.compression is None:
            raise SampleError(f"{path!r} is not a supported image (jpeg or png).")
        _ = sample.shape
    return sample
