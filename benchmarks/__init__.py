"""Benchmarks: tensorlake against its peers and the machine's ceiling (see README.md)."""
