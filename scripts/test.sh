#!/usr/bin/env bash
# Set up .venv (if needed), install tensorlake with its test extras, lint, type-check, run every test.
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
.venv/bin/python -m pytest --durations=15 "$@"
