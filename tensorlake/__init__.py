"""tensorlake: versioned, chunked, columnar tensor datasets for machine learning.

Example::

    import tensorlake as tl

    ds = tl.empty("./my-dataset")
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="jpeg")
        ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"])
        ds.append({"images": tl.read("cat.jpg"), "labels": "cat"})
    ds.images[0].numpy()
"""

from tensorlake._version import __version__
from tensorlake.api.dataset import Dataset
from tensorlake.api.factory import break_lock, dataset, delete, empty, exists, load
from tensorlake.api.tensor import Tensor
from tensorlake.compute import compose, compute
from tensorlake.engine.links import link
from tensorlake.engine.sample import Sample, read
from tensorlake.errors import (
    DatasetError,
    DatasetExistsError,
    DatasetNotFoundError,
    FormatError,
    IngestError,
    KeyNotFoundError,
    LinkChangedWarning,
    LockedError,
    ReadOnlyError,
    SampleError,
    StaleLockWarning,
    StorageError,
    TensorlakeError,
    TensorNotFoundError,
    TransformError,
    VersionError,
)

__all__ = [
    "Dataset",
    "DatasetError",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "FormatError",
    "IngestError",
    "KeyNotFoundError",
    "LinkChangedWarning",
    "LockedError",
    "ReadOnlyError",
    "Sample",
    "SampleError",
    "StaleLockWarning",
    "StorageError",
    "Tensor",
    "TensorNotFoundError",
    "TensorlakeError",
    "TransformError",
    "VersionError",
    "__version__",
    "break_lock",
    "compose",
    "compute",
    "dataset",
    "delete",
    "empty",
    "exists",
    "link",
    "load",
    "read",
]
