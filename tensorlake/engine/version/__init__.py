"""Version control on a ``DatasetCore``.

* :mod:`.commit` - a commit: prepared in memory, then stored (the commit point).
* :mod:`.checkout` - checkout of branches and past commits, reset, branch deletion.
* :mod:`.refs` - branch names, and resolving a ref to a commit.
* :mod:`.gc` - deleting what no branch can reach.
* :mod:`.log`, :mod:`.diff` - reading the history.
* :mod:`.verify` - checking every stored object the versions need (``verify_report``: its result).

The stored objects themselves are in ``engine/format/records.py``; the writer lock in
``engine/lock/``.
"""

__all__: list[str] = []
