#!/usr/bin/env bash
# Set up .venv (if needed), install tensorlake with its test extras, lint, type-check, run every test
# (arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# the CPU build of torch, first: an unpinned torch requirement would fetch a CUDA build
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[test]"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m mypy
# two processes, a test file each at a time (its module fixtures are made once): most
# tests wait on subprocesses, the S3 server or the disk, so 2 cores run two at once
# (18 minutes in one process, 9 in two). "-n 0" runs in this process.
.venv/bin/python -m pytest -n 2 --dist loadfile --durations=15 "$@"
