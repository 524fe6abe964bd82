"""Linked data: rows that point at objects elsewhere (``tl.link``) instead of holding them.

* :mod:`.sample` - ``tl.link`` and the ``LinkedSample`` a link row holds.
* :mod:`.resolver` - credentials by key (memory only), one storage per root, inspection.
* :mod:`.managed` - managed creds keys: each process finds their credentials itself.
* :mod:`.companions` - the hidden shape and sample-info tensors of a link tensor.
* :mod:`.reader` - fetching, decoding and verifying linked objects; the link policy.

The ``link[...]`` htypes themselves (encoding a row) are in ``engine/htypes/link.py``.
"""

from tensorlake.engine.links.reader import LINK_POLICIES, LinkReader, check_policy
from tensorlake.engine.links.resolver import LinkedObject, LinkResolver
from tensorlake.engine.links.sample import LinkedSample, link

__all__ = [
    "LINK_POLICIES",
    "LinkReader",
    "LinkResolver",
    "LinkedObject",
    "LinkedSample",
    "check_policy",
    "link",
]
