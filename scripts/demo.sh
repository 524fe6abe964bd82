#!/usr/bin/env bash
# Set up .venv (if needed), install tensorlake with the COCO extra, run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[coco]"
.venv/bin/python examples/coco_demo.py "$@"
