#!/usr/bin/env bash
# Set up everything on a fresh Debian 12 machine (as root): the container runtime and base
# images, the Python environment in .venv, and the companion images. Idempotent: when all is
# done it is a no-op in a few seconds. SKIP_RUNTIME=1 skips the container part; SKIP_DOCKER=1
# sets up podman only (the test command then fails on its Docker tests: CI never skips one).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
started=${EPOCHREALTIME/./}

if [[ ${SKIP_RUNTIME:-0} != 1 ]]; then
  if [[ ${SKIP_DOCKER:-0} == 1 ]]; then
    SETUP_STEPS=${SETUP_STEPS:-packages conf debian busybox python selftest} \
      bash scripts/setup-runtime.sh
  else
    bash scripts/setup-runtime.sh
  fi
fi

# The Python environment, reinstalled only when pyproject.toml changes. Playwright (the browser
# tests) drives Debian's chromium: it never downloads a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -f $stamp ]]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv .venv
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# checkov, which lints the example manifests (tests/catalogue/test_examples_checkov.py), in a
# venv of its own: it pins many libraries, some of them also ours.
CHECKOV_VERSION=3.3.30
if [[ ! -f .venv/checkov/.installed-$CHECKOV_VERSION ]]; then
  rm -rf .venv/checkov
  python3 -m venv .venv/checkov
  .venv/checkov/bin/python -m pip install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  touch ".venv/checkov/.installed-$CHECKOV_VERSION"
fi

if [[ ${SKIP_RUNTIME:-0} != 1 ]] && [[ -n "$(ls images/*/VERSION 2>/dev/null)" ]]; then
  .venv/bin/pattern images build --quiet --runtime podman
  if [[ ${SKIP_DOCKER:-0} != 1 ]]; then
    # Docker 20.10 cannot build images that use named build contexts: podman builds them and
    # they are copied over (cached: a no-op when docker has them already).
    .venv/bin/pattern images build --quiet --runtime docker
  fi
fi
elapsed=$(( ${EPOCHREALTIME/./} - started ))
printf '[setup] ready in %d.%01d s\n' $((elapsed / 1000000)) $((elapsed / 100000 % 10)) >&2
