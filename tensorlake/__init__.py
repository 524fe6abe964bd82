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

from tensorlake import registry
from tensorlake._version import __version__
from tensorlake.api.dataset import Dataset
from tensorlake.api.factory import (
    break_lock,
    copy,
    dataset,
    deepcopy,
    delete,
    empty,
    exists,
    like,
    load,
)
from tensorlake.api.info import Info
from tensorlake.api.tensor import Tensor
from tensorlake.compute import ComputeFunction, EvalReport, SampleOut, compose, compute
from tensorlake.engine.htypes.sample import Sample, read
from tensorlake.engine.links.sample import link
from tensorlake.engine.version.verify_report import VerifyReport
from tensorlake.errors import (
    AllSamplesSkippedError,
    ConditionalWritesError,
    ConfigError,
    DatasetArgumentError,
    DatasetError,
    DatasetExistsError,
    DatasetNotFoundError,
    EmptyTensorError,
    FormatError,
    HtypeArgumentError,
    HtypeError,
    IngestError,
    InvalidIndexError,
    InvalidNameError,
    KeyNotFoundError,
    LinkChangedError,
    LinkChangedWarning,
    LinkError,
    LockedError,
    MergeConflictError,
    MissingTensorsError,
    NotPicklableError,
    PastVersionError,
    ReadOnlyError,
    SampleError,
    StaleLockWarning,
    StorageArgumentError,
    StorageError,
    TensorlakeError,
    TensorNotFoundError,
    TransformArgumentError,
    TransformError,
    UnknownHtypeError,
    VersionError,
    ViewNotFoundError,
)
from tensorlake.ingestion.archive import ingest_archive
from tensorlake.ingestion.auto import ingest
from tensorlake.ingestion.classification import ingest_classification, split_views
from tensorlake.ingestion.coco import ingest_coco
from tensorlake.ingestion.generic import ingest_files
from tensorlake.ingestion.manifest import ingest_manifest
from tensorlake.ingestion.upload import UploadReport, upload

__all__ = [
    "AllSamplesSkippedError",
    "ComputeFunction",
    "ConditionalWritesError",
    "ConfigError",
    "Dataset",
    "DatasetArgumentError",
    "DatasetError",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "EmptyTensorError",
    "EvalReport",
    "FormatError",
    "HtypeArgumentError",
    "HtypeError",
    "Info",
    "IngestError",
    "InvalidIndexError",
    "InvalidNameError",
    "KeyNotFoundError",
    "LinkChangedError",
    "LinkChangedWarning",
    "LinkError",
    "LockedError",
    "MergeConflictError",
    "MissingTensorsError",
    "NotPicklableError",
    "PastVersionError",
    "ReadOnlyError",
    "Sample",
    "SampleError",
    "SampleOut",
    "StaleLockWarning",
    "StorageArgumentError",
    "StorageError",
    "Tensor",
    "TensorNotFoundError",
    "TensorlakeError",
    "TransformArgumentError",
    "TransformError",
    "UnknownHtypeError",
    "UploadReport",
    "VerifyReport",
    "VersionError",
    "ViewNotFoundError",
    "__version__",
    "break_lock",
    "compose",
    "compute",
    "copy",
    "dataset",
    "deepcopy",
    "delete",
    "empty",
    "exists",
    "ingest",
    "ingest_archive",
    "ingest_classification",
    "ingest_coco",
    "ingest_files",
    "ingest_manifest",
    "like",
    "link",
    "load",
    "read",
    "registry",
    "split_views",
    "upload",
]
