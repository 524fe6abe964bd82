"""``tensorlake config set|get|unset|list``: the registry's settings
(``$TENSORLAKE_HOME/config.toml``; ``tensorlake.registry.settings``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tensorlake.errors import ConfigError
from tensorlake.registry.settings import (
    KEYS,
    config_path,
    list_settings,
    set_setting,
    unset_setting,
)

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    keys = "\n".join(f"  {k:13s} {text}" for k, text in KEYS.items())
    cmd = sub.add_parser(
        "config",
        help="show or change the registry's settings (remote, endpoint_url, profile ...)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            f"Settings in $TENSORLAKE_HOME/config.toml; TENSORLAKE_<KEY> variables override "
            f"them. Secrets are not written here: name a profile, or use AWS_* variables.\n\n"
            f"keys:\n{keys}"
        ),
        epilog=(
            "examples:\n  tensorlake config set remote s3://team-bucket/datasets\n"
            "  tensorlake config set endpoint_url http://127.0.0.1:9000\n"
            "  tensorlake config list --json"
        ),
    )
    verbs = cmd.add_subparsers(dest="verb", metavar="VERB", required=True)
    set_ = verbs.add_parser("set", help="set a key")
    set_.add_argument("key", choices=sorted(KEYS))
    set_.add_argument("value")
    set_.set_defaults(func=_set)
    get = verbs.add_parser("get", help="print a key's value (exit 1 when unset)")
    get.add_argument("key", choices=sorted(KEYS))
    get.set_defaults(func=_get)
    unset = verbs.add_parser("unset", help="remove a key from the file")
    unset.add_argument("key", choices=sorted(KEYS))
    unset.set_defaults(func=_unset)
    list_ = verbs.add_parser("list", help="every key, its value and where it comes from")
    list_.add_argument("--json", action="store_true", help="machine-readable output")
    list_.set_defaults(func=_list)


def _set(args: argparse.Namespace) -> int:
    set_setting(args.key, args.value)
    print(f"{args.key} set in {config_path()}")
    return 0


def _get(args: argparse.Namespace) -> int:
    value = list_settings()[args.key]["value"]
    if value is None:
        raise ConfigError(f"{args.key} is not set (`tensorlake config set {args.key} VALUE`).")
    print(str(value).lower() if isinstance(value, bool) else value)
    return 0


def _unset(args: argparse.Namespace) -> int:
    removed = unset_setting(args.key)
    print(f"{args.key} {'removed from' if removed else 'was not in'} {config_path()}")
    return 0


def _list(args: argparse.Namespace) -> int:
    entries = list_settings()
    if args.json:
        print(json.dumps(entries, indent=1))
        return 0
    for key, entry in entries.items():
        value = "-" if entry["value"] is None else entry["value"]
        print(f"{key:13s} {value}  ({entry['source']})")
    return 0
