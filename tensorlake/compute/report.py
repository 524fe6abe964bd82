"""``EvalReport``: what one ``eval`` did (also kept as ``ComputeFunction.last_report``)."""

from __future__ import annotations

import html
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

    def _repr_html_(self) -> str:
        """A small table in notebooks: items, rows, failures, checkpoints, speed."""
        rate = f"{self.items / self.seconds:,.0f} items/s" if self.seconds > 0 else ""
        failed = ", ".join(str(i) for i in self.failed_indices[:10])
        if len(self.failed_indices) > 10:
            failed += f", … ({len(self.failed_indices)} in all)"
        cells = [
            ("items", f"{self.items:,}"),
            ("rows appended", f"{self.samples:,}"),
            ("failed items", failed or "none"),
            ("checkpoints", ", ".join(c[:12] for c in self.checkpoints) or "none"),
            ("time", f"{self.seconds:.2f} s {rate}".strip()),
        ]
        rows = "".join(
            f"<tr><th style='text-align:left'>{k}</th><td>{html.escape(v)}</td></tr>"
            for k, v in cells
        )
        return f"<table class='tl-eval-report'><caption>EvalReport</caption>{rows}</table>"
