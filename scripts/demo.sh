#!/usr/bin/env bash
# Set everything up, then the main job: generate a pod from the catalogue and check it.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH=$PWD/.venv/bin:$PATH
set -x
pattern list
pattern generate -f tests/fixtures/patterns/seed-loader/examples/classic.stack.yaml \
  --catalogue tests/fixtures/patterns | pattern validate -
