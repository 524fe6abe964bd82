"""The ``tensorlake`` command."""

__all__: list[str] = []
