#!/usr/bin/env bash
# Set everything up, then the main job: generate a pod from the catalogue, run it for real on
# podman (native sidecar first, probes and hooks honoured), show it, and take it down.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH=$PWD/.venv/bin:$PATH SIDECAR_PATTERNS_CATALOGUE=$PWD/tests/fixtures/patterns
out=$(mktemp -d)
trap 'pattern down demo --grace-period 0 >/dev/null 2>&1 || true; rm -rf "$out"' EXIT
set -x
pattern list
pattern generate --name demo --app-image localhost/busybox:1.35-static \
  --app-command "sh -c 'while true; do date > /srv/share/now.txt; sleep 1; done'" \
  --with file-server --set file-server.banner="served by a sidecar" -o "$out/demo.yaml"
pattern validate "$out/demo.yaml"
pattern run "$out/demo.yaml" --wait --publish 18080:8080 --verbose
curl -fsS http://127.0.0.1:18080/ http://127.0.0.1:18080/now.txt
pattern status
pattern down demo --grace-period 5
