"""Sharing datasets by name: register a folder, push it, pull it on "another machine".

    python examples/share.py [--remote s3://bucket/prefix --endpoint-url URL]

Without arguments the remote is a local folder (any folder works as a remote, e.g. a
mounted drive), so this runs anywhere; with ``--remote`` it is an S3 bucket on AWS or
any S3-compatible server (keys from the AWS_* variables or a profile). Two homes stand
for two machines: the first registers etcetera's sample layout and publishes it, the
second installs it with ``tl.registry.dataset(..., auto_install=True)``; then a new
commit is pushed and pulled again, moving only what changed.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

import tensorlake as tl


def sample(root: Path) -> Path:
    """The seed's general example: README.md, meta.json, assets/, data/{train,test}/."""
    for part, n in (("train", 6), ("test", 2)):
        (root / "data" / part).mkdir(parents=True)
        for i in range(n):
            (root / "data" / part / f"{part}{i:05d}.json").write_text(json.dumps({"x": i}))
    (root / "README.md").write_text("# flower\nA tiny sample.\n")
    (root / "meta.json").write_text(json.dumps({"license": "CC-BY-4.0"}))
    (root / "assets").mkdir()
    (root / "assets" / "Analysis.ipynb").write_text("{}")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--remote", help="s3://bucket/prefix (default: a local folder)")
    parser.add_argument("--endpoint-url", help="an S3-compatible server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["TENSORLAKE_REMOTE"] = args.remote or str(work / "remote")
        if args.endpoint_url:
            os.environ["TENSORLAKE_ENDPOINT_URL"] = args.endpoint_url

        os.environ["TENSORLAKE_HOME"] = str(work / "alice")  # machine one
        ds = tl.registry.register(sample(work / "sample"), "flower", progressbar=False)
        print(tl.registry.push("flower", progressbar=False))

        os.environ["TENSORLAKE_HOME"] = str(work / "bob")  # machine two
        flower = tl.registry.dataset("flower", auto_install=True, progressbar=False)
        print(flower, flower.meta, len(flower["train"]), "train rows")
        print((flower.root / "README.md").read_text().splitlines()[0])

        os.environ["TENSORLAKE_HOME"] = str(work / "alice")
        with ds:
            ds.append(
                {
                    "path": "train/extra.json",
                    "data": np.frombuffer(b"{}", np.uint8),
                    "partition": "train",
                }
            )
        ds.commit("one more file")
        print(tl.registry.push("flower", progressbar=False))  # a few KB
        print(
            [
                (d["name"], [v["version"] for v in d["versions"]])
                for d in tl.registry.ls(remote=True)
            ]
        )

        os.environ["TENSORLAKE_HOME"] = str(work / "bob")
        print(tl.registry.pull("flower", progressbar=False))
        print(len(tl.load("flower")), "rows now;", len(tl.load("flower@1")), "in version 1")
        ds.close()


if __name__ == "__main__":
    main()
