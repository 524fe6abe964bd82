"""The user-facing facades: Dataset, Tensor, and opening datasets by path."""
