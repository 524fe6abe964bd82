"""``tensorlake upload``: a folder's files to ``s3://bucket/prefix`` (``tl.upload``).

``--config`` reads the DIGITS ``upload_config.cfg``, as DIGITS writes it::

    [S3 Config]
    endpoint = http://your-s3-endpoint.com:80
    accesskey = 0123456789abcde
    secretkey = PrIclctP80KrMi6+UPO9ZYNrkg6ByFeFRR6484qL
    bucket = digits
    prefix = mnist

and then the target argument may be left out (``s3://<bucket>/<prefix>``). The command
line wins over the file: a target replaces its bucket and prefix, ``--endpoint-url``
its endpoint, and ``--profile`` its access and secret keys.
"""

from __future__ import annotations

import argparse
import configparser
from typing import Any

from tensorlake.cli.options import layout
from tensorlake.errors import IngestError
from tensorlake.ingestion.upload import DEFAULT_WORKERS, UploadReport, upload

__all__ = ["CONFIG_FIELDS", "CONFIG_SECTION", "add_parser", "read_config"]

CONFIG_SECTION = "S3 Config"
CONFIG_FIELDS = ("endpoint", "accesskey", "secretkey", "bucket", "prefix")
"""The fields of the config's section, all optional."""


def add_parser(sub: Any) -> None:
    cmd = sub.add_parser(
        "upload",
        help="upload a folder's files to s3://bucket/prefix (resumable)",
        **layout(
            "Upload every file under DIR to s3://bucket/prefix/<relative path>, creating "
            "the bucket when missing. Files already there with the same size and checksum "
            "are skipped, so an interrupted upload run again sends only what is missing.",
            [
                "tensorlake upload ./digits s3://digits/mnist --endpoint-url http://host:9000",
                "tensorlake upload ./digits --config upload_config.cfg",
            ],
        ),
    )
    cmd.add_argument("local_dir", metavar="DIR", help="the folder to upload")
    cmd.add_argument(
        "target",
        nargs="?",
        metavar="s3://bucket/prefix",
        help="where to upload (default: bucket and prefix from --config)",
    )
    cmd.add_argument("--endpoint-url", metavar="URL", help="an S3-compatible server's URL")
    cmd.add_argument("--profile", metavar="NAME", help="an AWS profile (~/.aws) to sign with")
    cmd.add_argument(
        "--workers", type=int, metavar="N", help=f"requests at once (default {DEFAULT_WORKERS})"
    )
    cmd.add_argument(
        "--config",
        metavar="FILE",
        help="an upload_config.cfg with an [S3 Config] section: endpoint, accesskey, "
        "secretkey, bucket, prefix",
    )
    cmd.add_argument(
        "--include-hidden", action="store_true", help="upload dot-files and dot-folders too"
    )
    cmd.add_argument("--no-progress", action="store_true", help="show no progress bar")
    cmd.set_defaults(func=_upload)


def read_config(path: str) -> tuple[str | None, dict[str, str]]:
    """``(target URL or None, creds)`` from an ``[S3 Config]`` file."""
    parser = configparser.RawConfigParser()  # as DIGITS reads it: no % interpolation
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as err:
        raise IngestError(f"cannot read the upload config {path!r}: {err.strerror}") from err
    except configparser.Error as err:
        # only the first line: the others quote the file's lines, which hold the secret key
        # (and so does the parser's error: it is not chained, for --debug tracebacks)
        first = str(err).splitlines()[0]
        raise IngestError(
            f"{path!r} is not an upload config ([{CONFIG_SECTION}] then field = value lines): "
            f"{first}"
        ) from None
    if not parser.has_section(CONFIG_SECTION):
        raise IngestError(
            f"{path!r} has no [{CONFIG_SECTION}] section; expected one with the fields "
            f"{', '.join(CONFIG_FIELDS)}"
        )
    section = {k: v.strip() for k, v in parser.items(CONFIG_SECTION)}
    unknown = sorted(set(section) - set(CONFIG_FIELDS))
    if unknown:
        raise IngestError(
            f"{path!r}: unknown field(s) {', '.join(unknown)} in [{CONFIG_SECTION}]; "
            f"the fields are {', '.join(CONFIG_FIELDS)}"
        )
    if bool(section.get("accesskey")) != bool(section.get("secretkey")):
        raise IngestError(f"{path!r}: give both accesskey and secretkey, or neither")
    creds = {}
    if section.get("endpoint"):
        creds["endpoint_url"] = section["endpoint"]
    if section.get("accesskey"):
        creds["aws_access_key_id"] = section["accesskey"]
        creds["aws_secret_access_key"] = section["secretkey"]
    url = None
    if section.get("bucket"):
        prefix = section.get("prefix", "").strip("/")
        url = f"s3://{section['bucket']}/{prefix}" if prefix else f"s3://{section['bucket']}"
    elif section.get("prefix"):
        raise IngestError(f"{path!r}: a prefix needs a bucket; add bucket = <name>")
    return url, creds


def _upload(args: argparse.Namespace) -> int:
    url, creds = read_config(args.config) if args.config else (None, {})
    url = args.target or url
    if url is None:
        raise IngestError(
            "no upload target: pass s3://bucket/prefix after the folder, or --config with "
            "a config whose [S3 Config] names a bucket"
        )
    if args.endpoint_url:
        creds["endpoint_url"] = args.endpoint_url
    if args.profile:
        creds.pop("aws_access_key_id", None)
        creds.pop("aws_secret_access_key", None)
        creds["profile_name"] = args.profile
    report = upload(
        args.local_dir,
        url,
        creds=creds or None,
        num_workers=args.workers,
        progressbar=not args.no_progress,
        include_hidden=args.include_hidden,
    )
    print(_summary(report))
    return 0


def _summary(report: UploadReport) -> str:
    return (
        f"uploaded {report.files_uploaded} files ({report.bytes_sent:,} bytes) to {report.url} "
        f"in {report.seconds:.1f} s; {report.files_skipped} were there already"
    )
