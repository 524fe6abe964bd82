"""``tensorlake create SRC [DEST]`` (any source, detected), ``tensorlake ingest
classification SRC DEST`` and ``tensorlake ingest coco IMAGES ANNOTATIONS DEST``.

S3 sources and destinations share ``--endpoint-url`` and ``--profile``; access keys come
from the standard AWS variables or the profile, never from the command line.
"""

from __future__ import annotations

import argparse
from typing import Any

from tensorlake.cli.options import layout, s3_creds
from tensorlake.ingestion.auto import FORMATS, ingest
from tensorlake.ingestion.classification import ingest_classification
from tensorlake.ingestion.coco import ingest_coco
from tensorlake.ingestion.manifest import ingest_manifest

__all__ = ["add_parser", "s3_creds"]


def add_parser(sub: Any) -> None:
    create = sub.add_parser(
        "create",
        help="create a dataset from any source (folder, S3 prefix, COCO, manifest, archive)",
        **layout(
            "Create a dataset from SRC, whatever it is (a classification or COCO folder, "
            "an S3 prefix, a manifest of URLs, an archive, any files): the kind is "
            "detected unless --format says it. DEST defaults to the local home.",
            [
                "tensorlake create ./flowers",
                "tensorlake create s3://bucket/raw/ s3://bucket/ds --endpoint-url URL",
                "tensorlake create https://example.com/data.tar.gz --name data --workers 4",
            ],
        ),
    )
    create.add_argument("src", help="a folder, s3:// prefix or object, http(s):// URL, manifest")
    create.add_argument(
        "dest", nargs="?", help="the dataset (default: $TENSORLAKE_HOME/datasets/<name>)"
    )
    create.add_argument("--name", help="the dataset's name (default: from the source)")
    create.add_argument("--format", choices=FORMATS, default="auto", help="the kind of source")
    create.add_argument(
        "--no-copy", dest="link", action="store_true", help="link the objects, copy nothing"
    )
    create.add_argument(
        "--skip-duplicate-urls", action="store_true", help="manifests: skip URLs seen before"
    )
    _common(create, link=False)
    create.set_defaults(func=_create)
    ingest = sub.add_parser(
        "ingest",
        help="create a dataset from a folder, S3 prefix or COCO files",
        **layout(
            "Create a dataset from a source of a known kind (SOURCE --help for each).",
            ["tensorlake ingest classification ./digits ./digits-ds --workers 2"],
        ),
    )
    kinds = ingest.add_subparsers(dest="source", metavar="SOURCE", required=True)
    classification = kinds.add_parser(
        "classification",
        help="an image-classification folder: <class>/<file> or <split>/<class>/<file>",
        **layout(
            "Ingest an image-classification folder, local or an S3 prefix, laid out as "
            "<class>/<file> or <split>/<class>/<file>: images, labels and splits.",
            [
                "tensorlake ingest classification ./digits ./digits-ds --workers 2",
                "tensorlake ingest classification s3://bucket/digits/ s3://bucket/ds --link",
            ],
        ),
    )
    classification.add_argument("src", help="a local folder or s3://bucket/prefix/")
    classification.add_argument("dest", help="the dataset: a local path or s3://bucket/prefix")
    _common(classification)
    classification.set_defaults(func=_classification)
    manifest = kinds.add_parser(
        "manifest",
        help="a JSON or CSV manifest of object URLs",
        **layout(
            "Ingest the rows of a JSON or CSV manifest of object URLs (checked first: "
            "URLs, lengths, duplicates), linked unless --copy.",
            ["tensorlake ingest manifest ./manifest.json ./ds --verify head"],
        ),
    )
    manifest.add_argument("manifest", help="a local path, s3:// or http(s):// URL")
    manifest.add_argument("dest", help="the dataset: a local path or s3://bucket/prefix")
    manifest.add_argument(
        "--copy", action="store_true", help="copy the objects instead of linking them"
    )
    manifest.add_argument(
        "--skip-duplicate-urls", action="store_true", help="skip URLs seen before"
    )
    manifest.add_argument(
        "--verify",
        choices=("none", "head", "decode"),
        default="none",
        help="check each object: head (exists, size) or decode (fetch and decode)",
    )
    _common(manifest, link=False)
    manifest.set_defaults(func=_manifest)
    coco = kinds.add_parser(
        "coco",
        help="COCO images and annotation files",
        **layout(
            "Ingest COCO images (a folder or an S3 prefix) with their annotation files: "
            "categories, boxes, masks and keypoints.",
            [
                "tensorlake ingest coco ./val2017 ./instances_val2017.json ./coco-val",
                "tensorlake ingest coco s3://bucket/val2017/ ann.json s3://bucket/coco --link",
            ],
        ),
    )
    coco.add_argument("images", help="the images: a local folder or s3://bucket/prefix/")
    coco.add_argument(
        "annotations", nargs="+", help="annotation files: local paths, s3:// or http(s):// URLs"
    )
    coco.add_argument("dest", help="the dataset: a local path or s3://bucket/prefix")
    _common(coco)
    coco.set_defaults(func=_coco)


def _common(parser: argparse.ArgumentParser, link: bool = True) -> None:
    parser.add_argument("--workers", type=int, default=0, help="worker processes (default 0)")
    parser.add_argument(
        "--checkpoint", type=int, default=0, metavar="N", help="commit every N files (0: never)"
    )
    if link:
        parser.add_argument("--link", action="store_true", help="link the files, copy nothing")
    parser.add_argument("--endpoint-url", help="an S3-compatible endpoint, e.g. http://host:9000")
    parser.add_argument("--profile", help="an AWS profile for the S3 source and destination")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    parser.add_argument("--resume", action="store_true", help="continue an unfinished ingest")
    parser.add_argument(
        "--ignore-errors", action="store_true", help="skip unreadable files (they are reported)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _run(args: argparse.Namespace, dest: str | None) -> dict[str, Any]:
    """The options every source takes, from the flags ``_common`` adds."""
    return {
        "dest_creds": s3_creds(args, dest or ""),
        "num_workers": args.workers,
        "checkpoint_interval": args.checkpoint,
        "resume": args.resume,
        "ignore_errors": args.ignore_errors,
        "progressbar": not args.no_progress,
        "overwrite": args.overwrite,
    }


def _create(args: argparse.Namespace) -> int:
    ingest(
        args.src,
        args.dest,
        name=args.name,
        format=args.format,
        link=args.link,
        creds=s3_creds(args, args.src),
        skip_duplicate_urls=args.skip_duplicate_urls,
        **_run(args, args.dest),
    )
    return 0


def _manifest(args: argparse.Namespace) -> int:
    verify: bool | str = "decode" if args.verify == "decode" else args.verify == "head"
    ingest_manifest(
        args.manifest,
        args.dest,
        link=not args.copy,
        skip_duplicate_urls=args.skip_duplicate_urls,
        verify=verify,
        src_creds=s3_creds(args, args.manifest),
        **_run(args, args.dest),
    )
    return 0


def _coco(args: argparse.Namespace) -> int:
    src_creds = s3_creds(args, args.images)
    ingest_coco(
        args.images, args.annotations, args.dest, src_creds=src_creds, link=args.link,
        **_run(args, args.dest),
    )  # fmt: skip
    return 0


def _classification(args: argparse.Namespace) -> int:
    src_creds = s3_creds(args, args.src)
    ingest_classification(
        args.src, args.dest, src_creds=src_creds, link=args.link, **_run(args, args.dest)
    )
    return 0
