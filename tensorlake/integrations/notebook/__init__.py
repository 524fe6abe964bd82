"""Datasets shown in notebooks, offline: HTML views (``html``) and image grids with what
the htypes say drawn on them (``grid``, ``draw``), with Pillow alone."""

__all__: list[str] = []
