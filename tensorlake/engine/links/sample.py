"""``tl.link``: a row that points at an object elsewhere instead of holding it.

A link row stores the object's URL and the *name* of the credentials to read it with
(a creds key); the secrets themselves live only in memory (``ds.populate_creds``) and
are supplied again by each reader, or, for a managed key, found by each process in its
environment (``managed.py``).
"""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any

from tensorlake.errors import LinkError

__all__ = ["LinkedSample", "link"]


@dataclass(frozen=True, slots=True)
class LinkedSample:
    """A reference to an object (``tl.link``); appended to a ``link[...]`` tensor."""

    url: str
    creds_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "creds_key": self.creds_key}

    @classmethod
    def from_stored(cls, data: bytes | memoryview) -> LinkedSample:
        """The link a stored row holds (its JSON, never compressed); an empty row (None
        appended) holds no link: ``LinkedSample("")``, as Deep Lake reads it."""
        if not len(data):
            return cls("")
        d = json.loads(bytes(data))
        return cls(d["url"], d.get("creds_key"))


def link(url: str | os.PathLike[str], creds_key: str | None = None) -> LinkedSample:
    """Refer to an object instead of copying it: a local path, ``file://``, ``s3://bucket/key``
    or ``http(s)://`` URL. ``creds_key`` names credentials given with ``ds.populate_creds``
    or, for a managed key (``ds.add_creds_key(key, managed=True)``), found by each process.

    Example::

        ds.images.append(tl.link("s3://raw-bucket/img/000001.jpg", creds_key="raw"))
    """
    text = os.fspath(url)
    if not isinstance(text, str) or not text:
        raise LinkError(f"tl.link() needs a path or URL, got {url!r}.")
    scheme = urllib.parse.urlsplit(text).scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        path = text[len("file://") :] if scheme == "file" else text
        text = "file://" + os.path.abspath(os.path.expanduser(path))
    elif scheme not in ("s3", "http", "https"):
        raise LinkError(
            f"tl.link() supports local paths, file://, s3:// and http(s):// URLs, got {text!r}."
        )
    if creds_key is not None and not isinstance(creds_key, str):
        raise LinkError(f"creds_key must be a string, got {type(creds_key).__name__}.")
    return LinkedSample(text, creds_key)
