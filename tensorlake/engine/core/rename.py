"""Renaming tensors and groups, deleting groups: schema changes recorded as versions.

A renamed tensor keeps its chunks where they are: its meta records the name in their
keys (``TensorMeta.storage_name``), so no chunk is copied and the commits before the
rename, which name the same chunks under the old name, stay readable. The ``Changes``
record of the branch remembers the rename, so ``diff`` shows it as one.
"""

from __future__ import annotations

from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.core.names import check_name
from tensorlake.engine.links.companions import companion_names
from tensorlake.errors import DatasetError, InvalidNameError, TensorNotFoundError

__all__ = ["delete_group", "rename_group", "rename_tensor"]


def _parent(name: str) -> str:
    return name.rpartition("/")[0]


def _check_new(core: DatasetCore, old: str, new: str, what: str) -> None:
    check_name(new)
    if _parent(old) != _parent(new):
        raise InvalidNameError(
            f"Cannot rename {what} '{old}' to '{new}': a rename stays in its group "
            f"('{_parent(old) or 'the root'}'); name it '{_parent(old) + '/' if _parent(old) else ''}"
            f"{new.rpartition('/')[2]}', or move it by copying."
        )
    if new in core.engines:
        raise DatasetError(f"Cannot rename {what} '{old}': a tensor '{new}' already exists.")
    if new in core.groups:
        raise DatasetError(f"Cannot rename {what} '{old}': a group '{new}' already exists.")


def _rename_all(core: DatasetCore, mapping: dict[str, str]) -> None:
    """Rename tensors (``old -> new``), keeping their order and their chunks' keys."""
    engines = {}
    for name, engine in core.engines.items():
        new = mapping.get(name)
        if new is not None:
            meta = engine.meta
            stored_as = meta.chunks_name
            meta.name = new
            meta.storage_name = None if stored_as == new else stored_as
            core.changes.tensor_renamed(name, new)
            name = new
        engines[name] = engine
    for engine in engines.values():  # a tensor names its companions in its extra
        extra = engine.meta.extra
        for key, value in extra.items():
            if isinstance(value, str) and value in mapping:
                extra[key] = mapping[value]
    core.engines = engines


def rename_tensor(core: DatasetCore, old: str, new: str) -> None:
    """Rename tensor ``old`` (a full name) to ``new``, in the same group; a link
    tensor's hidden companions are renamed with it."""
    core.check_writable()
    engine = core.engine(old)
    _check_new(core, old, new, "tensor")
    mapping = {old: new}
    old_prefix = _companion_prefix(old)
    for companion in companion_names(engine.meta.extra):
        if companion in core.engines and companion.startswith(old_prefix):
            mapping[companion] = _companion_prefix(new) + companion[len(old_prefix) :]
    taken = [n for n in list(mapping.values())[1:] if n in core.engines]
    if taken:
        raise DatasetError(f"Cannot rename tensor '{old}': tensors {taken} already exist.")
    _rename_all(core, mapping)
    core.changed()


def _companion_prefix(name: str) -> str:
    head, _, leaf = name.rpartition("/")
    return f"{head}/_{leaf}" if head else f"_{name}"


def rename_group(core: DatasetCore, old: str, new: str) -> None:
    """Rename group ``old`` to ``new`` (same parent): every tensor and group inside moves."""
    core.check_writable()
    if old not in core.groups:
        raise TensorNotFoundError(f"No group '{old}'. Groups: {sorted(core.groups) or 'none'}.")
    _check_new(core, old, new, "group")
    prefix = old + "/"
    mapping = {n: new + n[len(old) :] for n in core.engines if n.startswith(prefix)}
    _rename_all(core, mapping)
    core.groups[:] = [
        new + g[len(old) :] if g == old or g.startswith(prefix) else g for g in core.groups
    ]
    core.changed()


def delete_group(core: DatasetCore, name: str) -> None:
    """Delete group ``name``: its tensors (hidden ones included) and groups inside."""
    core.check_writable()
    if name not in core.groups:
        raise TensorNotFoundError(f"No group '{name}'. Groups: {sorted(core.groups) or 'none'}.")
    prefix = name + "/"
    with core.batch():
        for tensor in [n for n in core.engines if n.startswith(prefix)]:
            if tensor in core.engines:  # a companion goes with its link tensor
                core.delete_tensor(tensor)
        core.groups[:] = [g for g in core.groups if g != name and not g.startswith(prefix)]
        core.changed()
