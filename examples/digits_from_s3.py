"""The DIGITS workflow ("Creating a dataset using data from S3 endpoint"), on tensorlake.

1. Upload an MNIST-style folder (``train/<digit>/*.png``, ``test/<digit>/*.png``) to an
   S3-compatible endpoint, as DIGITS' ``upload_s3_data.py`` does (the bucket is created).
2. Create a classification dataset from the endpoint, bucket and prefix, with an access
   key and a secret key, as DIGITS' "Use S3" tab asks for.
3. Read it back: the splits, the class names, a batch of images.

Run it against any S3-compatible endpoint::

    python examples/digits_from_s3.py --endpoint-url http://host:9000 \\
        --access-key KEY --secret-key SECRET

or with no endpoint, against a local S3 server on 127.0.0.1 that it starts itself (moto,
``pip install 'moto[server]'``, which the test extra installs).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

import tensorlake as tl


def make_digits(root: Path, per_class: int = 20) -> Path:
    """A small MNIST-shaped folder: 28x28 grey PNGs of noisy strokes, 10 classes."""
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", per_class // 4)):
        for digit in range(10):
            folder = root / split / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = np.zeros((28, 28), np.uint8)
                image[4 + digit : 24, 6 + i % 8 : 10 + i % 8] = 255  # a stroke per class
                image |= (rng.random((28, 28)) > 0.97).astype(np.uint8) * 128
                Image.fromarray(image).save(folder / f"{i:05d}.png")
    return root


@contextlib.contextmanager
def local_s3() -> Iterator[str]:
    """An S3-compatible server on 127.0.0.1 for the length of the demo."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise SystemExit(
            "No --endpoint-url given and no local S3 server available: "
            "pip install 'moto[server]', or pass --endpoint-url."
        ) from None
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", help="an S3-compatible endpoint (default: start one)")
    parser.add_argument("--access-key", default="0123456789abcde")
    parser.add_argument("--secret-key", default="PrIclctP80KrMi6+UPO9ZYNrkg6ByFeFRR6484qL")
    parser.add_argument("--bucket", default="digits")
    parser.add_argument("--prefix", default="mnist")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
        endpoint = args.endpoint_url or stack.enter_context(local_s3())
        creds = {  # what DIGITS asks for: endpoint, access key, secret key
            "endpoint_url": endpoint,
            "aws_access_key_id": args.access_key,
            "aws_secret_access_key": args.secret_key,
        }
        folder = make_digits(Path(scratch) / "mnist")

        # 1. upload_s3_data.py: the folder to s3://<bucket>/<prefix>/
        report = tl.upload(folder, f"s3://{args.bucket}/{args.prefix}", creds=creds)
        print(report)

        # 2. the dataset, from the endpoint, bucket and prefix
        ds = tl.ingest_classification(
            f"s3://{args.bucket}/{args.prefix}/",
            Path(scratch) / "mnist-ds",
            src_creds=creds,
            num_workers=2,
            checkpoint_interval=64,
        )

        # 3. read it back
        views = tl.split_views(ds)
        print({name: len(view) for name, view in views.items()}, ds.labels.info.class_names)
        batch = views["train"][:8]
        print("train images", batch.images.numpy().shape, "labels", batch.labels.numpy().ravel())


if __name__ == "__main__":
    main()
