"""The result of ``verify``: what was read, and every damaged or missing object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tensorlake.errors import FormatError

__all__ = ["Problem", "VerifyReport"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One damaged or missing object: its storage key (a URL for a linked object) and
    what is wrong with it."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``verify`` checked and found: counts of the objects read, and every problem.

    ``links`` is the number of linked objects checked, None when links were not checked.

    Example::

        report = ds.verify()
        print(report)              # one line when ok, then one line per problem
        report.raise_if_damaged()  # FormatError naming the first damaged key
    """

    url: str
    commits: int = 0
    staging: int = 0
    segments: int = 0
    chunks: int = 0
    bytes: int = 0
    links: int | None = None
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing is damaged or missing."""
        return not self.problems

    def raise_if_damaged(self) -> None:
        """Raise ``FormatError`` (its ``key``: the first problem's) unless ``ok``."""
        if self.problems:
            first = self.problems[0]
            more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            raise FormatError(
                f"The dataset at {self.url} is damaged: {first}{more}. Restore the named "
                "objects from a copy, or reset / delete the versions that need them.",
                key=first.key,
            )

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values."""
        return {
            "url": self.url,
            "ok": self.ok,
            "commits": self.commits,
            "staging": self.staging,
            "segments": self.segments,
            "chunks": self.chunks,
            "bytes": self.bytes,
            "links": self.links,
            "problems": [{"key": p.key, "message": p.message} for p in self.problems],
        }

    def __str__(self) -> str:
        checked = [
            _count(self.commits, "commit"),
            _count(self.staging, "staging manifest"),
            _count(self.segments, "table segment"),
            f"{_count(self.chunks, 'chunk')} ({_size(self.bytes)})",
        ]
        if self.links is not None:
            checked.append(_count(self.links, "linked object"))
        verdict = "ok" if self.ok else f"DAMAGED, {_count(len(self.problems), 'problem')}"
        lines = [f"{self.url}: {verdict} (checked {', '.join(checked)})"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    value = n / 1000
    for unit in ("KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
