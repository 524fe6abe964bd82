"""``tensorlake log | diff | branch | checkout | commit | reset``: a dataset's versions.

A dataset keeps no checked-out state between commands: each command opens PATH at its
``main`` branch, or at the branch or commit ``PATH@REF`` names (``commit`` and ``reset``
then act on that branch).
"""

from __future__ import annotations

import argparse
from contextlib import closing
from typing import Any

from tensorlake.api.dataset import Dataset, core_of
from tensorlake.cli.options import add_json, add_path, command, open_dataset, print_json
from tensorlake.engine.format import records
from tensorlake.errors import VersionError

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    log = command(
        sub,
        "log",
        "print the commit history, newest first",
        ["tensorlake log ./coco", "tensorlake log ./coco@dev --json"],
    )
    add_path(log)
    add_json(log)
    log.set_defaults(func=_log)

    diff = command(
        sub,
        "diff",
        "show what changed between two versions since their common ancestor",
        ["tensorlake diff ./coco main dev", "tensorlake diff ./coco 3f2a9c01b7e4 dev --json"],
        description=(
            "Show what each of two versions (branch names or commit ids) changed since "
            "their common ancestor: tensors created or deleted, rows added and updated. "
            "With one version: that version against the current state of PATH's branch; "
            "with none: the branch's uncommitted changes."
        ),
    )
    add_path(diff)
    diff.add_argument("a", nargs="?", metavar="A", help="a branch or commit id")
    diff.add_argument("b", nargs="?", metavar="B", help="a branch or commit id")
    add_json(diff)
    diff.set_defaults(func=_diff)

    branch = command(
        sub,
        "branch",
        "list the branches, or start one, or delete one",
        [
            "tensorlake branch ./coco",
            "tensorlake branch ./coco relabel",
            "tensorlake branch ./coco@3f2a9c01b7e4 from-the-past",
            "tensorlake branch ./coco relabel --delete",
        ],
        description=(
            "Without NAME: list the branches and their head commits. With NAME: start "
            "branch NAME at PATH's version (its main branch, or PATH@REF), or with --delete "
            "delete it and whatever only it used."
        ),
    )
    add_path(branch)
    branch.add_argument("name", nargs="?", metavar="NAME", help="the branch to create or delete")
    branch.add_argument("-d", "--delete", action="store_true", help="delete branch NAME")
    add_json(branch)
    branch.set_defaults(func=_branch)

    checkout = command(
        sub,
        "checkout",
        "show a branch or commit, or start a branch there (-b)",
        ["tensorlake checkout ./coco dev", "tensorlake checkout ./coco relabel -b"],
        description=(
            "Show the version REF names (a branch, or a commit id or its prefix): its "
            "commit and tensors. With -b, start branch REF at PATH's version instead. The "
            "dataset keeps no checked-out state: other commands take PATH@REF."
        ),
    )
    add_path(checkout)
    checkout.add_argument("ref", metavar="REF", help="a branch name or commit id")
    checkout.add_argument(
        "-b", "--create", action="store_true", help="start a new branch REF at PATH's version"
    )
    checkout.set_defaults(func=_checkout)

    commit = command(
        sub,
        "commit",
        "commit the branch's stored, uncommitted changes",
        [
            'tensorlake commit ./coco -m "relabelled the cats"',
            "tensorlake commit ./coco@dev -m wip",
        ],
        description=(
            "Record the changes stored on PATH's branch since its head commit (left by "
            "writers that did not commit) as a commit; prints its id. Copies no data."
        ),
    )
    add_path(commit)
    commit.add_argument("-m", "--message", required=True, help="the commit message")
    commit.add_argument(
        "--allow-empty", action="store_true", help="commit even when nothing changed"
    )
    commit.set_defaults(func=_commit)

    reset = command(
        sub,
        "reset",
        "drop the branch's uncommitted changes: back to its head commit",
        ["tensorlake reset ./coco", "tensorlake reset s3://bucket/coco@dev"],
        description=(
            "Drop every change stored on PATH's branch since its head commit and delete "
            "the chunks only they used. After a crashed ingest this restores its last "
            "checkpoint exactly."
        ),
    )
    add_path(reset)
    reset.set_defaults(func=_reset)


def _log(args: argparse.Namespace) -> int:
    ds = open_dataset(args)
    if args.json:
        print_json(ds.commits)
    else:
        ds.log()
    return 0


def _diff(args: argparse.Namespace) -> int:
    ds = open_dataset(args)
    if args.json:
        print_json(ds.diff(args.a, args.b, as_dict=True))
    else:
        ds.diff(args.a, args.b)
    return 0


def _branch(args: argparse.Namespace) -> int:
    if args.name is None:
        if args.delete:
            raise VersionError("--delete needs the NAME of the branch to delete")
        return _list_branches(args)
    if args.delete:
        with closing(open_dataset(args, read_only=False)) as ds:
            ds.delete_branch(args.name)
        print(f"deleted branch '{args.name}'")
        return 0
    return _create_branch(args, args.name)


def _list_branches(args: argparse.Namespace) -> int:
    ds = open_dataset(args)
    storage = core_of(ds).storage
    heads = [{"name": b, "commit": records.read_head(storage, b)} for b in ds.branches]
    if args.json:
        print_json(heads)
    else:
        width = max(len(h["name"]) for h in heads)
        for h in heads:
            print(f"{h['name']:<{width}}  {h['commit']}")
    return 0


def _create_branch(args: argparse.Namespace, name: str) -> int:
    with closing(open_dataset(args, read_only=False)) as ds:
        if ds.has_head_changes:
            raise VersionError(
                f"Branch '{ds.branch}' has uncommitted changes, which starting a branch "
                f"would commit. Commit them first (tensorlake commit {args.path} -m ...) "
                f"or drop them (tensorlake reset {args.path})."
            )
        commit_id = ds.checkout(name, create=True)
    print(f"created branch '{name}' at commit {commit_id}")
    return 0


def _checkout(args: argparse.Namespace) -> int:
    if args.create:
        return _create_branch(args, args.ref)
    ds = open_dataset(args)
    ds.checkout(args.ref)
    print(_where(ds, args.ref))
    ds.summary()
    return 0


def _where(ds: Dataset, ref: str) -> str:
    if ref in ds.branches:
        return f"branch '{ref}' at commit {ds.commit_id}"
    return f"commit {ds.commit_id} (made on branch '{ds.branch}'; a past version, read-only)"


def _commit(args: argparse.Namespace) -> int:
    with closing(open_dataset(args, read_only=False)) as ds:
        commit_id = ds.commit(args.message, allow_empty=args.allow_empty)
    print(commit_id)
    return 0


def _reset(args: argparse.Namespace) -> int:
    with closing(open_dataset(args, read_only=False)) as ds:
        had_changes = ds.has_head_changes
        ds.reset()
    if had_changes:
        print(f"branch '{ds.branch}' reset to commit {ds.commit_id}")
    else:
        print(f"branch '{ds.branch}' had no uncommitted changes (commit {ds.commit_id})")
    return 0
