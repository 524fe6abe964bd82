"""What every loader shares, torch or not: the order of an epoch's rows and their
shards (``epochs``), where a loader stands in its epochs (``position``), what a worker
opens (``source``) and how it reads a batch (``reader``)."""

__all__: list[str] = []
