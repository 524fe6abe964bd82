"""A small file system (tmpfs) that tests fill, free, resize and turn read-only.

``SmallDisk.mount(folder, size)`` mounts a tmpfs of ``size`` bytes on ``folder`` (root
only: where the machine refuses, the test skips, saying why). ``fill(leave=n)`` writes a
ballast file until the disk is full, then gives back ``n`` bytes (tmpfs counts whole
4 KiB pages); ``free()`` removes it; ``resize(size)`` remounts it bigger or smaller;
``read_only()`` / ``writable()`` remount it so while files stay open. ``leftovers()``
lists what a failed write must not leave behind: temp files of atomic writes
(``.tl-tmp.*``), other ``*.tmp`` / ``.tmp-*`` names, and archive workspaces.

The tests of full disks and refused writes (``tests/test_full_disks.py``) and of
archive extraction use it, through the ``small_disk`` fixture in ``tests/conftest.py``.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

PAGE = 4096
BALLAST = "ballast"  # the filler's name, in the disk's top folder
TEMP_MARKS = (".tl-tmp.", ".tmp-", "tl-archive-")  # name prefixes a failed write may leave


class SmallDisk:
    """A mounted tmpfs at ``path``; unmount it with ``unmount()`` (the fixture does)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def mount(cls, path: Path, size: int) -> SmallDisk:
        """Mount a tmpfs of ``size`` bytes on ``path`` (made if missing), or skip the test."""
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
        done = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
        return cls(path)

    def unmount(self) -> None:
        _mount(str(self.path), command="umount")

    def available(self) -> int:
        """Bytes a write may still take."""
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Take every free byte but ``leave`` (rounded down to pages) with the ballast."""
        ballast = self.path / BALLAST
        with open(ballast, "ab", buffering=0) as f:
            block = b"\0" * (1 << 16)
            try:
                while f.write(block):
                    pass
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
            size = os.fstat(f.fileno()).st_size
        # a page smaller than asked is given back, never more
        os.truncate(ballast, max(0, size - (leave // PAGE) * PAGE))

    def free(self) -> None:
        """Remove the ballast: the disk has all its room again."""
        (self.path / BALLAST).unlink(missing_ok=True)

    def resize(self, size: int) -> None:
        """Remount with ``size`` bytes (files stay)."""
        self._remount(f"remount,size={size}")

    def read_only(self) -> None:
        """Remount read-only: every write from now on is refused with ``EROFS``."""
        self._remount("remount,ro")

    def writable(self) -> None:
        self._remount("remount,rw")

    def leftovers(self) -> list[str]:
        """Paths (relative) of temp files and workspaces left on the disk."""
        found = []
        for dirpath, dirnames, filenames in os.walk(self.path):
            for name in dirnames + filenames:
                if name.startswith(TEMP_MARKS) or name.endswith((".tmp", ".part", ".partial")):
                    found.append(os.path.relpath(os.path.join(dirpath, name), self.path))
        return sorted(found)

    def _remount(self, options: str) -> None:
        done = _mount("-o", options, str(self.path))
        assert done.returncode == 0, done.stderr


def _mount(*args: str, command: str = "mount") -> subprocess.CompletedProcess[str]:
    return subprocess.run([command, *args], capture_output=True, text=True, check=False)
