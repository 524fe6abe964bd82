"""Views chosen by rule: ``random_split`` (fractions or counts) and ``filter`` (a
function of each row). Both return views: row numbers, no data copied."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tensorlake.errors import DatasetArgumentError

__all__ = ["filter_rows", "split_lengths", "split_rows"]


def split_lengths(lengths: Sequence[int | float], total: int) -> list[int]:
    """Deep Lake's rule: fractions summing to 1 become ``floor(f * total)`` each, the
    remainder handed out one by one from the first; counts must sum to ``total``."""
    lengths = list(lengths)
    if not lengths:
        raise DatasetArgumentError("random_split() needs at least one length or fraction.")
    if any(not isinstance(x, (int, float, np.integer, np.floating)) or x < 0 for x in lengths):
        raise DatasetArgumentError(
            f"random_split() takes non-negative counts or fractions, got {lengths}."
        )
    is_fractions = any(isinstance(x, (float, np.floating)) for x in lengths)
    if is_fractions:
        if not math.isclose(sum(lengths), 1) or any(x > 1 for x in lengths):
            raise DatasetArgumentError(
                f"Fractions must each be between 0 and 1 and sum to 1, got {lengths} "
                f"(sum {sum(lengths)}); or give counts that sum to {total}."
            )
        counts = [math.floor(f * total) for f in lengths]
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        return counts
    counts = [int(x) for x in lengths]
    if sum(counts) != total:
        raise DatasetArgumentError(
            f"The lengths {counts} sum to {sum(counts)}, but the dataset has {total} rows: "
            "give counts that add up to it, or fractions that sum to 1."
        )
    return counts


def split_rows(
    rows: np.ndarray, lengths: Sequence[int | float], seed: int | None
) -> list[np.ndarray]:
    """``rows`` shuffled and cut into pieces of ``lengths`` (see ``split_lengths``)."""
    counts = split_lengths(lengths, len(rows))
    shuffled = np.random.default_rng(seed).permutation(rows)
    ends = np.cumsum(counts)
    return [np.sort(shuffled[end - k : end]) for k, end in zip(counts, ends)]


def filter_rows(
    view: Any, function: Callable[[Any], Any], num_workers: int, progressbar: bool
) -> np.ndarray:
    """Positions (within ``view``) of the rows for which ``function(view[i])`` is true."""
    if isinstance(function, str):
        raise DatasetArgumentError(
            "filter() takes a function of a row (e.g. lambda s: s.labels.numpy()[0] == 1); "
            "string queries (TQL) are not supported."
        )
    if not callable(function):
        raise DatasetArgumentError(f"filter() takes a callable, got {type(function).__name__}.")
    n = len(view)
    positions = range(n)
    bar = _bar(progressbar, n)

    def keep(i: int) -> bool:
        result = bool(function(view[i]))
        if bar is not None:
            bar.update(1)
        return result

    try:
        if num_workers and num_workers > 0:
            with ThreadPoolExecutor(num_workers) as pool:
                kept = list(pool.map(keep, positions))
        else:
            kept = [keep(i) for i in positions]
    finally:
        if bar is not None:
            bar.close()
    return np.flatnonzero(np.asarray(kept, dtype=bool))


def _bar(progressbar: bool, total: int) -> Any:
    return tqdm(total=total, desc="filter", unit="rows") if progressbar else None
