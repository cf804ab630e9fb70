#!/usr/bin/env bash
# Set everything up, then the main job: add an ssh sidecar to an unchanged app, run the pod for
# real (on podman, or on Docker when podman does not answer: `pattern run`'s auto choice;
# SIDECAR_PATTERNS_RUNTIME=docker picks Docker), reach the app's data with a real ssh/scp client,
# and take the pod down.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH=$PWD/.venv/bin:$PATH
work=$(mktemp -d)
trap 'pattern down demo --grace-period 0 >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
ssh-keygen -q -t ed25519 -N '' -C demo -f "$work/key"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ssh_opts=(-i "$work/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
engine=$(python3 -c 'from generator.runner.engines import choose; print(choose().name)')
set -x
pattern list
# The app is a stock busybox that writes into /data; it knows nothing about ssh.
pattern generate -f - --output-file "$work/demo.yaml" <<STACK
apiVersion: sidecar-patterns.io/v1alpha1
kind: Stack
metadata: {name: demo}
spec:
  app:
    image: localhost/busybox:1.35-static
    command: [sh, -c, 'echo "written by the app" > /data/report.txt; exec sleep 3600']
    securityContext: {runAsUser: 1000, runAsGroup: 1000}
  sidecars:
    - pattern: ssh
      values:
        authorizedKeys: "$(cat "$work/key.pub")"
STACK
pattern validate "$work/demo.yaml"
pattern run "$work/demo.yaml" --wait --publish "$port:2222" --verbose --runtime "$engine"
scp -P "$port" "${ssh_opts[@]}" "app@127.0.0.1:/data/report.txt" "$work/fetched.txt"
cat "$work/fetched.txt"
echo "uploaded over scp" > "$work/upload.txt"
scp -P "$port" "${ssh_opts[@]}" "$work/upload.txt" "app@127.0.0.1:/data/upload.txt"
"$engine" exec demo-demo ls -ln /data
pattern status demo
pattern down demo
