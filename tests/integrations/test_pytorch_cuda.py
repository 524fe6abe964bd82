"""``ds.pytorch()`` feeding a GPU: pinned batches, non-blocking copies, a training step,
and ranks from ``torch.distributed``. Skipped where no CUDA device is present (CI); run
on a machine with one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.integrations import data

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return data.make(str(tmp_path_factory.mktemp("cuda") / "ds"), n=64)


@pytest.mark.parametrize("workers", [0, 2])
def test_pinned_batches_reach_the_gpu_exactly(ds, workers):
    loader = ds.pytorch(
        tensors=["images", "labels", "vec"],
        num_workers=workers,
        batch_size=8,
        shuffle=True,
        seed=1,
        pin_memory=True,
    )
    images = ds.images.numpy()
    seen = []
    for batch in loader:
        assert batch["images"].is_pinned() and batch["labels"].is_pinned()
        on_gpu = {k: v.to("cuda", non_blocking=True) for k, v in batch.items()}
        torch.cuda.synchronize()
        for k, i in enumerate(on_gpu["index"].cpu().tolist()):
            assert np.array_equal(on_gpu["images"][k].cpu().numpy(), images[i])
            assert on_gpu["vec"][k].cpu().tolist() == [float(i)] * 3
            seen.append(i)
    assert sorted(seen) == list(range(len(ds)))


def test_a_training_step_on_the_gpu(ds):
    model = torch.nn.Linear(16 * 20 * 3, 3).cuda()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = []
    for epoch in range(2):
        loader = ds.pytorch(
            tensors=["images", "labels"], num_workers=2, batch_size=16, shuffle=True, seed=0
        )
        loader.set_epoch(epoch)
        for batch in loader:
            x = batch["images"].cuda(non_blocking=True).flatten(1).float() / 255
            y = batch["labels"].cuda(non_blocking=True).flatten().long()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
    assert len(losses) == 8 and all(np.isfinite(losses))


def test_ranks_default_from_torch_distributed(ds, tmp_path):
    """Two processes in a process group (gloo), each with its own CUDA stream of batches:
    together they see every row once, with no rank/world_size given."""
    script = textwrap.dedent(
        f"""
        import os, sys, json, torch, torch.distributed as dist
        sys.path.insert(0, {os.getcwd()!r})
        import tensorlake as tl
        dist.init_process_group("gloo", rank=int(sys.argv[1]), world_size=2,
                                init_method="file://{tmp_path}/pg")
        ds = tl.load({ds.path!r}, read_only=True)
        rows = []
        for batch in ds.pytorch(tensors=["labels"], batch_size=5, num_workers=1):
            rows += batch["index"].cuda().cpu().tolist()
        print(json.dumps(rows))
        dist.destroy_process_group()
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(r)], stdout=subprocess.PIPE, text=True)
        for r in range(2)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    per_rank = [set(json.loads(o.strip().splitlines()[-1])) for o in outs]
    assert not per_rank[0] & per_rank[1]
    assert per_rank[0] | per_rank[1] == set(range(len(ds)))
