"""The bytes on storage: what each object of a dataset holds and where it lives.

* :mod:`.keys` - every storage key, built in one place.
* :mod:`.chunk` - a chunk object: consecutive rows of one tensor.
* :mod:`.chunk_table` - where each row lives (``ChunkTable.locate``).
* :mod:`.manifest` - a version's tensors: their metas and chunk tables.
* :mod:`.segments` - manifests stored with content-addressed table segments.
* :mod:`.changes` - what a version changed that its manifest cannot tell.
* :mod:`.records` - commits, staging states and branch heads as stored.
* :mod:`.root` - ``tensorlake.json``: the format version.
* :mod:`.packing` - msgpack for every structured object.

The layout is documented in docs/format.md.
"""

__all__: list[str] = []
