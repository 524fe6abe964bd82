"""One module per system, each run as ``python -m benchmarks.peers.<module> '<json args>'``.

They run in other virtualenvs (Deep Lake 3 and LitData have their own), so they import
nothing from ``benchmarks`` but ``_protocol`` (standard library) and ``_coco`` (numpy,
pycocotools).
"""
