#!/bin/sh
# Usage: check.sh CONFIG... : each config through syslog-ng's syntax check, then a start-up
# (which compiles every regexp); prints "NAME ok" or "NAME FAIL: why" for each.
# Tools the staged image lacks come from /opt/busybox after the image's own.
mkdir -p /tmp/busybox && /opt/busybox --install -s /tmp/busybox && PATH=$PATH:/tmp/busybox
for f in "$@"; do
    name=$(basename "$f")
    if ! out=$(syslog-ng --no-caps --syntax-only -f "$f" 2>&1); then
        echo "$name FAIL: syntax: $(echo "$out" | head -3 | tr '\n' ' ')"; continue
    fi
    d=$(mktemp -d)
    grep -o "base-dir('[^']*')" "$f" | sed "s/base-dir('//; s/')\$//" | while read -r dir; do
        mkdir -p "$dir"; done
    mkfifo "$d/out"
    syslog-ng --no-caps -F -e -f "$f" -R "$d/persist" -p "$d/pid" -c "$d/ctl" >"$d/out" 2>&1 &
    pid=$!
    if tee "$d/log" <"$d/out" | grep -q -m1 "syslog-ng starting up"; then
        kill "$pid"; wait "$pid"; echo "$name ok"
    else
        # No start-up line: it exited (the reason is in its log), or is stopped here.
        kill "$pid" 2>/dev/null; wait "$pid"
        echo "$name FAIL: start (exit $?): $(tail -2 "$d/log" | tr '\n' ' ')"
    fi
done
