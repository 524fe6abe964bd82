"""``EvalReport``: what one ``eval`` did (also kept as ``ComputeFunction.last_report``)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["EvalReport"]


@dataclass(slots=True)
class EvalReport:
    """What an ``eval`` did."""

    items: int  # input items processed by this eval (failed ones included)
    samples: int  # rows appended
    failed_indices: list[int] = field(default_factory=list)  # with ignore_errors=True
    checkpoints: list[str] = field(default_factory=list)  # commit ids
    seconds: float = 0.0
