"""``tensorlake ls | push | pull | register``: datasets shared by name through the remote
in ``$TENSORLAKE_HOME/config.toml`` (``tensorlake config``)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from tensorlake import registry
from tensorlake.compute.progress import human_bytes

__all__ = ["add_parser"]

_RAW = argparse.RawDescriptionHelpFormatter


def add_parser(sub: Any) -> None:
    ls = sub.add_parser(
        "ls",
        help="list the local datasets (--remote: the remote's, with their versions)",
        formatter_class=_RAW,
        epilog="examples:\n  tensorlake ls\n  tensorlake ls --remote --json",
    )
    ls.add_argument("-r", "--remote", action="store_true", help="list the remote's datasets")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_ls)
    push = sub.add_parser(
        "push",
        help="publish a local dataset's current commit as its next version",
        formatter_class=_RAW,
        description=(
            "Publish NAME's head commit (branch main) as a new version on the remote. Only "
            "objects the remote lacks are uploaded; the version is visible once all are "
            "there, so an interrupted push publishes nothing and the next one resumes."
        ),
        epilog="example:\n  tensorlake push flower",
    )
    push.add_argument("name", help="a dataset of $TENSORLAKE_HOME/datasets")
    push.add_argument("-f", "--force", action="store_true", help="publish even if not a descendant")
    _progress(push)
    push.set_defaults(func=_push)
    pull = sub.add_parser(
        "pull",
        help="install or update a local copy from the remote",
        formatter_class=_RAW,
        description=(
            "Install NAME (its latest version, or NAME@VERSION) into "
            "$TENSORLAKE_HOME/datasets/NAME, or bring the local copy up to it, downloading "
            "only what is missing and checking every object's checksum."
        ),
        epilog="examples:\n  tensorlake pull flower\n  tensorlake pull flower@2 --force",
    )
    pull.add_argument("name", metavar="NAME[@VERSION]", help="a dataset on the remote")
    pull.add_argument("-f", "--force", action="store_true", help="discard local commits or changes")
    _progress(pull)
    pull.set_defaults(func=_pull)
    register = sub.add_parser(
        "register",
        help="make a directory (data/<partition>/..., meta.json) a local dataset",
        formatter_class=_RAW,
        description=(
            "Validate DIR (a non-empty data/ of partition folders; optional meta.json, "
            "README.md, other folders) and make it the local dataset NAME: one row per "
            "file of data/, with its partition; meta.json becomes the dataset's metadata."
        ),
        epilog="example:\n  tensorlake register ./sample supermnist",
    )
    register.add_argument("directory", metavar="DIR", help="the dataset's directory")
    register.add_argument("name", help="its name (lower-case letters, digits, - and _)")
    register.add_argument(
        "-f", "--force", action="store_true", help="replace a local dataset of that name"
    )
    register.add_argument("--workers", type=int, default=0, help="worker processes")
    _progress(register)
    register.set_defaults(func=_register)


def _progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _ls(args: argparse.Namespace) -> int:
    found = registry.ls(remote=args.remote)
    if args.json:
        print(json.dumps(found, indent=1))
        return 0
    if not found:
        print("no datasets" + (" on the remote" if args.remote else " (tensorlake create / pull)"))
        return 0
    rows: list[tuple[str, ...]]
    header: tuple[str, ...]
    if args.remote:
        rows = [
            (
                d["name"],
                str(v["version"]),
                str(v["rows"]),
                human_bytes(v["bytes"]),
                v["commit"][:12],
                time.strftime("%Y-%m-%d %H:%M", time.localtime(v["time"])),
                v["author"],
            )
            for d in found
            for v in d["versions"]
        ]
        header = ("NAME", "VERSION", "ROWS", "SIZE", "COMMIT", "PUBLISHED", "BY")
    else:
        rows = [
            (
                d["name"],
                str(d["rows"]),
                str(d["tensors"]),
                human_bytes(d["bytes"]),
                (d["head"] or "-")[:12],
                _state(d),
            )
            for d in found
        ]
        header = ("NAME", "ROWS", "TENSORS", "SIZE", "HEAD", "PUSHED")
    _table(header, rows)
    return 0


def _state(entry: dict[str, Any]) -> str:
    if entry["pushed"]:
        return f"yes (v{entry['version']})"
    return "changes not committed" if entry["uncommitted"] else "no"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _push(args: argparse.Namespace) -> int:
    report = registry.push(args.name, force=args.force, progressbar=not args.no_progress)
    print(report)
    return 0


def _pull(args: argparse.Namespace) -> int:
    report = registry.pull(args.name, force=args.force, progressbar=not args.no_progress)
    print(report)
    return 0


def _register(args: argparse.Namespace) -> int:
    ds = registry.register(
        args.directory,
        args.name,
        force=args.force,
        num_workers=args.workers,
        progressbar=not args.no_progress,
    )
    print(f"registered {args.name}: {len(ds)} files in {ds.path}")
    return 0
