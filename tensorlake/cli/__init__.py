"""The ``tensorlake`` command."""
