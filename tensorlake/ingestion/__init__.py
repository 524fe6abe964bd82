"""Ingestion: sources turned into datasets, on top of ``@tl.compute`` (workers,
checkpoints, ``resume``, ``ignore_errors`` and a progress bar for every source)."""

__all__: list[str] = []
