#!/usr/bin/env bash
# Set up everything (scripts/setup.sh) and run every check and test, integration included.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k compose -x`.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m generator.docs --check
.venv/bin/pytest "$@"
