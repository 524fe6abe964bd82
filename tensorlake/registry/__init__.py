"""Sharing datasets by name through any S3-compatible bucket (or a shared folder).

A local home (``$TENSORLAKE_HOME``, default ``~/.tensorlake``) holds named datasets in
``datasets/<name>/`` and the settings in ``config.toml`` (``remote``, ``endpoint_url``,
``profile``, ``region``, ``public``). ``push`` publishes a dataset's commit as the next
version of its name on the remote, uploading only what the remote lacks; ``pull``
installs or updates a local copy, downloading only what it lacks, every object checked;
``register`` turns a directory in etcetera's layout (``data/<partition>/...``,
``meta.json``, ``README.md``) into a local dataset; ``dataset`` opens one by name,
pulling it first when asked. The same verbs are ``tensorlake ls|push|pull|register``.

Example::

    import tensorlake as tl

    tl.registry.register("./sample", "flower")
    tl.registry.push("flower")
    flower = tl.registry.dataset("flower", auto_install=True)   # on another machine
    flower.keys(), flower["train"], flower.meta, flower.root
"""

from tensorlake.registry.listing import ls
from tensorlake.registry.pull import PullReport, pull
from tensorlake.registry.push import PushReport, push
from tensorlake.registry.register import RegisteredDataset, check_layout, dataset, register
from tensorlake.registry.settings import (
    Settings,
    list_settings,
    load_settings,
    set_setting,
    unset_setting,
)

__all__ = [
    "PullReport",
    "PushReport",
    "RegisteredDataset",
    "Settings",
    "check_layout",
    "dataset",
    "list_settings",
    "load_settings",
    "ls",
    "pull",
    "push",
    "register",
    "set_setting",
    "unset_setting",
]
