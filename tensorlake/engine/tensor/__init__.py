"""One tensor's rows on storage.

* :mod:`.reader` - ``TensorReader``: rows back from chunks (ranged, whole, vectorised).
* :mod:`.engine` - ``TensorEngine``: appends into chunks, updates, flushes.
* :mod:`.append` - rows appended to several tensors at once, all or nothing.
* :mod:`.chunk_io` - background chunk writes and the chunk cache a dataset shares.
* :mod:`.batch_decode` - many rows decoded at once (images into one array, threaded).
* :mod:`.block` - rows a compute worker stores as chunks, adopted by the writer.
"""

from tensorlake.engine.tensor.append import append_columns
from tensorlake.engine.tensor.engine import TensorEngine
from tensorlake.engine.tensor.reader import TensorReader

__all__ = ["TensorEngine", "TensorReader", "append_columns"]
