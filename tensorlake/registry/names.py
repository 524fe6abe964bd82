"""``NAME[@VERSION]``: how the registry's commands name a dataset and a version of it."""

from __future__ import annotations

from tensorlake.errors import InvalidNameError
from tensorlake.ingestion.naming import check_dataset_name

__all__ = ["parse_name"]


def parse_name(text: str) -> tuple[str, int | None]:
    """``"flower@3"`` -> ``("flower", 3)``, ``"flower"`` -> ``("flower", None)``; an
    ``InvalidNameError`` saying why for anything else."""
    name, sep, version = str(text).partition("@")
    check_dataset_name(name)
    if not sep:
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise InvalidNameError(
            f"Invalid version in {text!r}: a version is a number from 1 up (e.g. {name}@3); "
            "`tensorlake ls --remote` lists them."
        )
    return name, int(version)
