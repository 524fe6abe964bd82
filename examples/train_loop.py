"""Train a tiny model on the demo dataset with ``ds.pytorch()``, then resume mid-epoch.

    python examples/train_loop.py [--images 96] [--epochs 10] [--workers 2]

Generates a small synthetic COCO set (64x48 JPEGs with 1-8 polygons each), ingests it
with ``tl.ingest_coco``, and trains a small CNN on the CPU to estimate, from the pixels,
the share of each image its objects cover (a few seconds). The loader shuffles by
``(seed, epoch)``, decodes in worker processes, and a per-tensor ``transform`` turns images into float tensors.
Then it shows resume: a state saved after two batches, loaded into a new loader, gives
exactly the batches that had not been yielded. Last, ``ds.batches()`` reads the same
rows as numpy arrays without torch, here to compute the mean pixel.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_coco import generate

import tensorlake as tl


def to_float(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float in [0, 1]: runs in the loader's workers."""
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255


def covered(areas: np.ndarray) -> torch.Tensor:
    """The share of the image its objects cover (their COCO areas): what the model learns."""
    return torch.tensor([min(1.0, float(areas.sum()) / (64 * 48))])


def make_dataset(root: Path, images: int, workers: int) -> tl.Dataset:
    annotations = generate(root / "coco", images, width=64, height=48, seed=1)
    return tl.ingest_coco(
        root / "coco" / "images",
        annotations,
        root / "ds",
        num_workers=workers,
        progressbar=False,
        summary=False,
    )


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        ds = make_dataset(Path(tmp), args.images, args.workers)
        print(f"dataset: {len(ds)} rows, tensors {sorted(ds.tensors)}")
        loader = ds.pytorch(
            tensors=["images", "areas"],
            transform={"images": to_float, "areas": covered},
            batch_size=16,
            shuffle=True,
            seed=0,
            num_workers=args.workers,
        )
        net = model()
        optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
        started = time.perf_counter()
        for epoch in range(args.epochs):
            loader.set_epoch(epoch)
            losses = []
            for batch in loader:
                loss = nn.functional.mse_loss(net(batch["images"]), batch["areas"])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
            print(f"epoch {epoch}: {len(losses)} batches, mean loss {np.mean(losses):.4f}")
        print(f"trained in {time.perf_counter() - started:.1f} s")

        # resume mid-epoch: a new loader (it could be a new process) continues exactly
        loader.set_epoch(args.epochs)
        whole = [batch["index"].tolist() for batch in loader]
        loader.set_epoch(args.epochs)
        batches = iter(loader)
        taken = [next(batches)["index"].tolist() for _ in range(2)]
        state = loader.state_dict()
        del batches
        again = ds.pytorch(
            tensors=["images", "areas"],
            transform={"images": to_float, "areas": covered},
            batch_size=16,
            shuffle=True,
            seed=0,
            num_workers=args.workers,
        )
        again.load_state_dict(state)
        rest = [batch["index"].tolist() for batch in again]
        assert taken + rest == whole, "resume must give exactly the batches not yielded"
        print(f"resumed after {len(taken)} batches: {len(rest)} more, none repeated or lost")

        # the same rows without torch
        total = sum(
            b["images"].astype(np.float64).sum((0, 1, 2))
            for b in ds.batches(32, tensors=["images"])
        )
        print("mean pixel (RGB):", np.round(total / (len(ds) * 64 * 48), 1).tolist())


if __name__ == "__main__":
    main()
