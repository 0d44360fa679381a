#!/usr/bin/env bash
# integration/engines.sh [RUNTIME]
#
# Runs a busybox container through real engines with RUNTIME (default: the release or debug
# berth of this checkout) as their OCI runtime, and checks the output and exit code:
#   containerd  a private containerd (own config, root, state, socket; CRI plugin off) and
#               containerd-shim-runc-v2 with `--runc-binary RUNTIME`: the way Kubernetes nodes
#               use a runc-compatible runtime (runtime class with BinaryName).
#   podman      `podman --runtime RUNTIME run` with conmon, a private --root/--runroot, and an
#               image imported from a busybox tarball (no registry here).
# Each engine is skipped (with a reason) when not installed. Exit status: 0 when every engine
# that ran passed. Everything runs in a private mount namespace and cleans up after itself.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
if [ -z "${ENGINES_INNER:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "engines.sh: must run as root" >&2; exit 2; }
  export ENGINES_INNER=1
  exec unshare -m --propagation private -- "$0" "$@"
fi
RUNTIME=${1:-}
if [ -z "$RUNTIME" ]; then
  for c in "$TOP/target/release/berth" "$TOP/target/debug/berth"; do [ -x "$c" ] && RUNTIME=$c && break; done
fi
[ -x "$RUNTIME" ] || { echo "engines.sh: runtime not found (cargo build first)" >&2; exit 2; }
RUNTIME=$(readlink -f "$RUNTIME")
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || { echo "engines.sh: busybox not found (apt-get install busybox-static)" >&2; exit 2; }
W=$(mktemp -d /tmp/berth-engines.XXXXXX)
FAILED=0
. "$HERE/lib-containerd.sh"
cleanup() {
  if [ -n "$CTRD_PID" ]; then
    ctr --address "$W/ctrd/sock" -n berth-it tasks kill -s SIGKILL it >/dev/null 2>&1 || true
    ctr --address "$W/ctrd/sock" -n berth-it tasks rm -f it >/dev/null 2>&1 || true
    ctr --address "$W/ctrd/sock" -n berth-it containers rm it >/dev/null 2>&1 || true
    ctrd_stop
  fi
  if command -v podman >/dev/null && [ -d "$W/podman" ]; then
    podman --root "$W/podman/root" --runroot "$W/podman/run" rm -af >/dev/null 2>&1 || true
  fi
  awk -v w="$W" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  for d in /sys/fs/cgroup/*/berth-it /sys/fs/cgroup/berth-it; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
result() { if [ "$2" = ok ]; then echo "PASS $1"; else echo "FAIL $1: $3"; FAILED=1; fi; }

# A rootfs of busybox and its applets.
busybox_rootfs "$W/rootfs"

containerd_test() {
  command -v containerd >/dev/null && command -v ctr >/dev/null || { echo "SKIP containerd: not installed"; return; }
  local d=$W/ctrd
  ctrd_config "$d"
  ctrd_start "$d" || { result containerd fail "containerd did not start: $(tail -5 "$d/log")"; return; }
  local out rc=0
  out=$(ctr --address "$d/sock" -n berth-it run --rm --rootfs --runc-binary "$RUNTIME" --runc-root "$d/runc" \
        --cgroup /berth-it/it "$W/rootfs" it /bin/sh -c 'echo hello-from-containerd; cat /proc/self/status | grep ^NoNewPrivs; exit 7' 2>&1) || rc=$?
  if [ "$rc" = 7 ] && grep -q hello-from-containerd <<<"$out"; then
    result containerd ok
  else
    result containerd fail "exit $rc, output: $out; containerd log: $(tail -5 "$d/log")"
  fi
}

podman_test() {
  command -v podman >/dev/null && command -v conmon >/dev/null || { echo "SKIP podman: not installed"; return; }
  local p=$W/podman P
  mkdir -p "$p"
  P=(podman --root "$p/root" --runroot "$p/run" --runtime "$RUNTIME" --cgroup-manager cgroupfs
     --events-backend file --storage-driver vfs)
  tar -C "$W/rootfs" -cf "$p/rootfs.tar" .
  "${P[@]}" import -q "$p/rootfs.tar" berth-it-busybox >/dev/null
  local out rc=0
  out=$("${P[@]}" run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 berth-it-busybox /bin/sh -c 'echo hello-from-podman; exit 5' 2>&1) || rc=$?
  if [ "$rc" = 5 ] && grep -q hello-from-podman <<<"$out"; then
    result podman ok
  else
    result podman fail "exit $rc, output: $out"
  fi
}

echo "runtime: $RUNTIME ($("$RUNTIME" --version | head -1))"
containerd_test
[ -n "${SKIP_PODMAN:-}" ] || podman_test
exit $FAILED
