"""Parallel, ordered, checkpointed transforms: ``@tl.compute`` and ``tl.compose``."""

from tensorlake.compute.pipeline import ComputeFunction, EvalReport, compose, compute
from tensorlake.compute.sample_out import SampleOut

__all__ = ["ComputeFunction", "EvalReport", "SampleOut", "compose", "compute"]
