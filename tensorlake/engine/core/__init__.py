"""The dataset core: tensors of the checked-out version, the write protocol, and where
in its history the dataset is (``BranchState``)."""

from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.core.state import BranchState

__all__ = ["BranchState", "DatasetCore"]
