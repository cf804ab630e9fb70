#!/usr/bin/env bash
# setup-runtime.sh: make a Debian 12 machine (root, no systemd, no container registry) able to
# run this project's pods with podman and with Docker Engine. Re-runnable: each step checks its
# state, skips when done.
#
# Steps, in order:
#   packages  apt: podman runc conmon catatonit netavark aardvark-dns iptables debootstrap
#             busybox-static curl git ca-certificates shellcheck, and the real clients the tests
#             use: openssh-client rsync openssl lftp sslscan redis-server redis-tools, and the
#             engines whose configs tests check on the host: nginx nutcracker, and rclone (the
#             data-loader engine its image tests and benchmark run on the host), and chromium
#             (the browser the `pattern ui` tests drive) (apt-get update only if needed; no
#             service is started by the install: policy-rc.d says no meanwhile)
#   conf      /etc/containers/containers.conf: runc, cgroupfs, file events, netavark, default
#             ulimits within the host's hard limits (a different old file is kept once as .orig);
#             a "containers" range in /etc/subuid and /etc/subgid for `hostUsers: false` pods
#   debian    docker.io/library/debian:bookworm-slim, built here with debootstrap (minbase,
#             slimmed like the official image, labelled as a local build)
#   busybox   localhost/busybox:1.35-static (+ :latest): Debian's busybox-static on an empty root
#   python    localhost/python3-debian:3.11-bookworm: Debian's python3 on the debian image (tests)
#   selftest  kube play a tiny pod with a hostPort on 127.0.0.1, fetch its page, tear it down;
#             not repeated until podman or containers.conf changes
#   docker    apt: docker.io (Docker Engine 20.10, containerd, runc); when dockerd does not
#             answer, start it by hand in the background (no systemd needed), log in
#             /var/log/dockerd-sidecar-patterns.log, and wait for /var/run/docker.sock
#   dockerimg the base images above, copied into Docker (podman save | docker load) when missing
#
# Environment knobs:
#   SETUP_STEPS   steps to run, space separated (default: all eight above)
#   FORCE_IMAGES  1 = rebuild both images and repeat the self-test even if done before
#   DEBIAN_MIRROR default http://deb.debian.org/debian (security updates: "$DEBIAN_MIRROR-security")
#
# Prints one line per step with elapsed seconds on stderr. On failure prints one line saying why
# and exits 1; command output is kept in the log file that line names.
set -Eeuo pipefail

SETUP_STEPS=${SETUP_STEPS:-packages conf debian busybox python selftest docker dockerimg}
FORCE_IMAGES=${FORCE_IMAGES:-0}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

PACKAGES=(podman runc conmon catatonit netavark aardvark-dns iptables debootstrap busybox-static
  curl git ca-certificates shellcheck openssh-client rsync openssl lftp graphviz sslscan
  redis-server redis-tools nginx nutcracker rclone chromium)
CONF=/etc/containers/containers.conf
DEBIAN_LOCAL=localhost/debian-debootstrap:bookworm-slim
DEBIAN_ALIAS=docker.io/library/debian:bookworm-slim
PYTHON_IMG=localhost/python3-debian:3.11-bookworm
BUSYBOX_IMG=localhost/busybox:1.35-static  # Debian 12 ships busybox 1.35; also tagged :latest
SELFTEST_MARK=/var/lib/containers/setup-runtime-selftest.ok
SELFTEST_POD=setup-runtime-selftest
DESCRIPTION=org.opencontainers.image.description
# Debian's client, which matches its daemon (a newer docker on PATH would shadow it).
DOCKER=/usr/bin/docker
DOCKERD_LOG=/var/log/dockerd-sidecar-patterns.log
STEP=preflight NOTE=""

say() { printf 'setup-runtime: %s\n' "$*" >&2; }
fail() { say "$STEP: $*"; exit 1; }
usec() { echo "${EPOCHREALTIME/./}"; }
seconds_since() { local d=$(($(usec) - $1)); printf '%d.%d' $((d / 1000000)) $((d / 100000 % 10)); }
forced() { [[ $FORCE_IMAGES == 1 ]]; }
have_image() { podman image exists "$1" 2>>"$LOG"; }
image_id() { podman image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
# A forced rebuild leaves the previous image untagged; drop it unless something still uses it.
drop_untagged() { [[ -z $1 || $1 == "$(image_id "$2")" ]] || podman rmi "$1" >>"$LOG" 2>&1 || true; }
image_mb() { podman image inspect -f '{{.Size}}' "$1" | awk '{printf "%.1f MB", $1 / 1e6}'; }
wants() { [[ " $SETUP_STEPS " == *" $1 "* ]]; }

preflight() {
  [[ $EUID -eq 0 ]] || fail "must run as root (running as uid $EUID)"
  local os step userns
  # shellcheck disable=SC1091  # os-release is a plain KEY=value file
  os=$(. /etc/os-release 2>/dev/null && echo "${ID:-} ${ID_LIKE:-}") || true
  if [[ " $os " != *" debian "* ]] || ! command -v apt-get >/dev/null; then
    fail "not a Debian system with apt (os-release ID: ${os:-none})"
  fi
  userns=$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 0)
  ((userns > 0)) || fail "user namespaces are disabled (user.max_user_namespaces=$userns)"
  for step in $SETUP_STEPS; do
    [[ " packages conf debian busybox python selftest docker dockerimg " == *" $step "* ]] \
      || fail "unknown step '$step'"
  done
}

# Runs a command (apt) logged, with services kept from starting: nginx and redis-server would
# otherwise start on the host (ports 80 and 6379) when installed on a machine without systemd.
without_service_starts() {
  local policy=/usr/sbin/policy-rc.d created=0 rc=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# setup-runtime.sh: no service starts while it installs packages\nexit 101\n' \
      >"$policy"
    chmod 0755 "$policy"
    created=1
  fi
  "$@" >>"$LOG" 2>&1 || rc=$?
  if ((created)); then rm -f "$policy"; fi
  return "$rc"
}

step_packages() {
  local missing
  # dpkg-query fails and prints nothing for never-seen packages: diff the names, ignore its rc.
  missing=$(comm -23 <(printf '%s\n' "${PACKAGES[@]}" | sort) \
    <({ dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${PACKAGES[@]}" 2>/dev/null || true; } \
      | awk '$1 == "ii" {print $2}' | sort))
  if [[ -z $missing ]]; then NOTE="all installed"; return; fi
  # shellcheck disable=SC2086  # one word per package is intended
  set -- $missing
  export DEBIAN_FRONTEND=noninteractive
  local install=(without_service_starts apt-get install -y -q --no-install-recommends "$@")
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || ! "${install[@]}"; then
    apt-get update -q >>"$LOG" 2>&1 || fail "apt-get update failed (log: $LOG)"
    "${install[@]}" || fail "apt-get install $* failed (log: $LOG)"
  fi
  NOTE="installed $*"
}

wanted_conf() {
  local nofile nproc
  nofile=$(ulimit -Hn) nproc=$(ulimit -Hu)
  # Lacking CAP_SYS_RESOURCE, runc cannot set a limit above the caller's hard limit: podman's
  # default nofile=1048576 fails with "error setting rlimit type 7". nproc above 32768
  # (kernel.pid_max here) failed the same way.
  if [[ $nofile == unlimited ]] || ((nofile > 1048576)); then nofile=1048576; fi
  if [[ $nproc == unlimited ]] || ((nproc > 32768)); then nproc=32768; fi
  cat <<EOF
# Written by sidecar-patterns scripts/setup-runtime.sh; re-running it rewrites this file.
[containers]
# Must not exceed the hard limits podman runs with (ulimit -Hn / -Hu at set-up time).
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]

[engine]
# crun refuses cgroups v1 hybrid hosts; runc works.
runtime = "runc"
# There is no systemd to manage cgroups or receive journald events.
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
EOF
}

# Subordinate ids for pods with `hostUsers: false` (a user namespace per pod): podman's
# --userns=auto takes them from the "containers" entry. Added once, never changed.
SUBIDS="containers:2147483647:2147483648"
ensure_subids() {
  local f added=""
  for f in /etc/subuid /etc/subgid; do
    grep -q '^containers:' "$f" 2>/dev/null || { echo "$SUBIDS" >>"$f"; added+=" ${f##*/}"; }
  done
  [[ -z $added ]] || SUBIDS_NOTE=", ids for user namespaces added to$added"
}

step_conf() {
  local want; want=$(wanted_conf)
  SUBIDS_NOTE=""
  ensure_subids
  if [[ -f $CONF && "$(<"$CONF")" == "$want" ]]; then NOTE="up to date$SUBIDS_NOTE"; return; fi
  mkdir -p "${CONF%/*}"
  if [[ -f $CONF && ! -e $CONF.orig ]]; then
    cp -p "$CONF" "$CONF.orig" && NOTE=" (old file kept as .orig)"
  fi
  printf '%s\n' "$want" >"$CONF.new" && mv "$CONF.new" "$CONF"
  NOTE="written, $(grep -o 'nofile=[0-9]*' "$CONF") $(grep -o 'nproc=[0-9]*' "$CONF")$NOTE"
  NOTE+=$SUBIDS_NOTE
}

check_podman() {
  local out
  out=$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>&1) \
    || fail "podman info fails: $(grep -m1 '^Error' <<<"$out" || tail -n1 <<<"$out")"
}

# Does to a debootstrap tree what the official bookworm-slim image does to stay small and quiet.
slim_rootfs() {
  local r=$1 key=/usr/share/keyrings/debian-archive-keyring.gpg
  rm -f "$r/etc/apt/sources.list"
  printf '%s\n' "Types: deb" "URIs: $DEBIAN_MIRROR" "Suites: bookworm bookworm-updates" \
    "Components: main" "Signed-By: $key" "" "Types: deb" "URIs: $DEBIAN_MIRROR-security" \
    "Suites: bookworm-security" "Components: main" "Signed-By: $key" \
    >"$r/etc/apt/sources.list.d/debian.sources"
  { printf 'path-exclude /usr/share/%s/*\n' doc man groff info lintian linda locale
    echo 'path-include /usr/share/doc/*/copyright'; } >"$r/etc/dpkg/dpkg.cfg.d/docker"
  local a=$r/etc/apt/apt.conf.d/docker
  local c='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb'
  c+=' /var/cache/apt/*.bin || true"'
  printf '%s\n' "DPkg::Post-Invoke { $c; };" "APT::Update::Post-Invoke { $c; };" \
    'Dir::Cache::pkgcache "";' 'Dir::Cache::srcpkgcache "";' >"$a-clean"
  echo 'Acquire::Languages "none";' >"$a-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$a-gzip-indexes"
  echo 'APT::AutoRemove::SuggestsImportant "false";' >"$a-autoremove-suggests"
  find "$r/usr/share/doc" -mindepth 2 ! -type d ! -name copyright -delete
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$r"/usr/share/{man,groff,info,lintian,linda,locale}/* "$r"/var/lib/apt/lists/* \
    "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/log/*.log \
    "$r"/var/log/apt/* "$r/debootstrap"
  # debootstrap copies the host's name and resolver in; podman mounts its own at run time.
  : >"$r/etc/hostname"; : >"$r/etc/resolv.conf"
}

step_debian() {
  if ! forced && have_image "$DEBIAN_ALIAS"; then NOTE="present"; return; fi
  local r=$WORK/rootfs old; old=$(image_id "$DEBIAN_ALIAS")
  debootstrap --variant=minbase bookworm "$r" "$DEBIAN_MIRROR" >>"$LOG" 2>&1 \
    || fail "debootstrap from $DEBIAN_MIRROR failed (log: $LOG)"
  slim_rootfs "$r"
  tar --numeric-owner -C "$r" -c . | podman import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL $DESCRIPTION=\"Local debootstrap build (minbase bookworm, slimmed) by \
sidecar-patterns setup-runtime.sh; stands in for, and is not, the official debian:bookworm-slim\"" \
    - "$DEBIAN_LOCAL" >>"$LOG" 2>&1
  podman tag "$DEBIAN_LOCAL" "$DEBIAN_ALIAS"
  drop_untagged "$old" "$DEBIAN_ALIAS"
  rm -rf --one-file-system "$r"
  NOTE="built, $(image_mb "$DEBIAN_ALIAS")"
}

step_busybox() {
  if ! forced && have_image "$BUSYBOX_IMG"; then NOTE="present"; return; fi
  local r=$WORK/busybox applet old; old=$(image_id "$BUSYBOX_IMG")
  mkdir -p "$r"/{bin,etc,tmp} && chmod 1777 "$r/tmp"
  cp /bin/busybox "$r/bin/busybox"
  for applet in $("$r/bin/busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$r/bin/$applet"
  done
  printf '%s\n' root:x:0:0:root:/:/bin/sh app:x:1000:1000:app:/tmp:/bin/sh \
    nonroot:x:65532:65532:nonroot:/tmp:/bin/sh nobody:x:65534:65534:nobody:/:/bin/sh \
    >"$r/etc/passwd"
  printf '%s\n' root:x:0: app:x:1000: nonroot:x:65532: nogroup:x:65534: >"$r/etc/group"
  tar --numeric-owner --owner=0 --group=0 -C "$r" -c . | podman import -q \
    --change 'ENV PATH=/bin' --change 'CMD ["sh"]' \
    --change "LABEL $DESCRIPTION=\"Debian busybox-static on an empty root, built locally by \
sidecar-patterns setup-runtime.sh; not docker.io/library/busybox\"" \
    - "$BUSYBOX_IMG" >>"$LOG" 2>&1
  podman tag "$BUSYBOX_IMG" localhost/busybox:latest
  drop_untagged "$old" "$BUSYBOX_IMG"
  NOTE="built, $(image_mb "$BUSYBOX_IMG")"
}

# Test peers and app stand-ins run Debian's python3; honest name, not docker.io/library/python.
step_python() {
  if ! forced && have_image "$PYTHON_IMG"; then NOTE="present"; return; fi
  local old; old=$(image_id "$PYTHON_IMG")
  printf '%s\n' "FROM $DEBIAN_ALIAS" \
    "RUN apt-get update && apt-get install -y --no-install-recommends python3 ca-certificates && rm -rf /var/lib/apt/lists/*" \
    'ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1' \
    "LABEL $DESCRIPTION=\"Debian 12 python3 (3.11), built locally by sidecar-patterns setup\"" \
    'CMD ["python3"]' >"$WORK/python.Containerfile"
  podman build -q --pull=never -t "$PYTHON_IMG" -f "$WORK/python.Containerfile" "$WORK" \
    >>"$LOG" 2>&1
  drop_untagged "$old" "$PYTHON_IMG"
  NOTE="built, $(image_mb "$PYTHON_IMG")"
}

selftest_fingerprint() { echo "$(podman --version) $({ md5sum <"$CONF"; } 2>/dev/null || true)"; }

free_port() {
  local p
  for p in {18990..18999}; do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  fail "ports 127.0.0.1:18990-18999 are all in use"
}

step_selftest() {
  local want; want=$(selftest_fingerprint)
  if ! forced && [[ -f $SELFTEST_MARK && "$(<"$SELFTEST_MARK")" == "$want" ]]; then
    NOTE="passed before"; return
  fi
  have_image "$BUSYBOX_IMG" || fail "needs $BUSYBOX_IMG (run the busybox step)"
  local port yaml=$WORK/selftest.yaml body=""
  port=$(free_port) || exit 1
  cat >"$yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $SELFTEST_POD}
spec:
  restartPolicy: Never
  containers:
  - name: web
    image: $BUSYBOX_IMG
    imagePullPolicy: Never
    command: [sh, -c, 'echo selftest-ok >/tmp/index.html && exec httpd -f -p 8080 -h /tmp']
    ports: [{containerPort: 8080, hostPort: $port, hostIP: 127.0.0.1}]
EOF
  podman pod rm -f -t 0 "$SELFTEST_POD" >>"$LOG" 2>&1 || true
  if DISABLE_HC_SYSTEMD=true podman kube play "$yaml" >>"$LOG" 2>&1; then
    for _ in {1..50}; do
      body=$(curl -fsS -m 2 "http://127.0.0.1:$port/" 2>>"$LOG") && break
      sleep 0.1
    done
  fi
  # Stopping with -t 0 first turns a ~3.5 s cgroup v1 teardown into ~0.4 s.
  podman pod stop -t 0 "$SELFTEST_POD" >>"$LOG" 2>&1 || true
  podman kube down "$yaml" >>"$LOG" 2>&1 || true
  [[ $body == selftest-ok ]] || fail "pod on 127.0.0.1:$port did not answer (log: $LOG)"
  echo "$want" >"$SELFTEST_MARK"
  NOTE="pod answered on 127.0.0.1:$port"
}

docker_answers() { [[ -x $DOCKER ]] && "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

step_docker() {
  local status
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' docker.io 2>/dev/null || true)
  if [[ $status != ii* ]]; then
    export DEBIAN_FRONTEND=noninteractive
    local install=(apt-get install -y -q --no-install-recommends docker.io)
    if ! "${install[@]}" >>"$LOG" 2>&1; then
      apt-get update -q >>"$LOG" 2>&1 || fail "apt-get update failed (log: $LOG)"
      "${install[@]}" >>"$LOG" 2>&1 || fail "apt-get install docker.io failed (log: $LOG)"
    fi
    NOTE="installed docker.io, "
  fi
  if docker_answers; then NOTE+="dockerd answers"; return; fi
  # No systemd here: start dockerd by hand, detached from this shell, and wait for its API.
  # 9>&-: the set-up lock must not live on in the daemon.
  setsid nohup /usr/sbin/dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
  local _
  for _ in {1..120}; do
    docker_answers && { NOTE+="dockerd started (log: $DOCKERD_LOG)"; return; }
    sleep 0.5
  done
  fail "dockerd did not answer on /var/run/docker.sock within 60 s: $(tail -n1 "$DOCKERD_LOG" 2>/dev/null) (log: $DOCKERD_LOG)"
}

step_dockerimg() {
  docker_answers || fail "docker does not answer (run the docker step)"
  local image name id have copied=()
  # What docker has, as "name id" lines, in one call (a no-op run stays quick).
  have=$("$DOCKER" images --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}' 2>>"$LOG")
  for image in "$BUSYBOX_IMG" localhost/busybox:latest "$DEBIAN_ALIAS" "$PYTHON_IMG"; do
    id=$(image_id "$image")
    [[ -n $id ]] || continue
    name=${image#docker.io/library/}  # docker's name for an official-library image
    if ! forced && grep -qxF "$name sha256:${id#sha256:}" <<<"$have"; then continue; fi
    # One image per archive: podman 4.3's multi-image archive loads every tag onto one image.
    podman save "$image" 2>>"$LOG" | "$DOCKER" load -q >>"$LOG" 2>&1 \
      || fail "copying $image into docker failed (log: $LOG)"
    copied+=("$image")
  done
  NOTE=${copied:+copied ${#copied[@]} image(s)}
  NOTE=${NOTE:-present}
}

run_step() {
  STEP=$1 NOTE=""
  wants "$1" || return 0
  local t0; t0=$(usec)
  "step_$1"
  say "$(printf '%-9s %-46s %5ss' "$1" "$NOTE" "$(seconds_since "$t0")")"
}

T_START=$(usec)
preflight
exec 9>/run/setup-runtime.lock
flock -n 9 || fail "another setup-runtime.sh is running"
WORK=$(mktemp -d /tmp/setup-runtime.XXXXXX)
LOG=$WORK/log
# After a failure keep a non-empty log: the one-line error points at it.
trap 'rc=$?; ((rc)) && [[ -s $LOG ]] || rm -rf --one-file-system "$WORK"' EXIT
trap 'fail "command failed at line $LINENO (log: $LOG)"' ERR

run_step packages
run_step conf
STEP=podman
if wants debian || wants busybox || wants python || wants selftest; then check_podman; fi
run_step debian
run_step busybox
run_step python
run_step selftest
run_step docker
run_step dockerimg
say "ready in $(seconds_since "$T_START")s"
