"""The engine: datasets as chunks, manifests and commits on a ``Storage``.

Subpackages, lowest first (each imports only from those before it)::

    format/    the bytes on storage: keys, chunks, chunk tables, manifests, records
    lock/      the writer lock: its record, takeover, heartbeat
    links/     linked data: tl.link, the resolver, companion tensors, reading
    htypes/    one object per htype: validation, defaults, encoding, decoding
    tensor/    one tensor's rows: reader, writer, chunk I/O, batch decode, blocks
    core/      DatasetCore: the tensors of a version and the write protocol
    version/   commit, checkout, reset, refs, gc, log, diff

docs/architecture.md maps every module.
"""

__all__: list[str] = []
