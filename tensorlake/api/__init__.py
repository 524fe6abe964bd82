"""The user-facing facades: Dataset, Tensor, and opening datasets by path."""

__all__: list[str] = []
