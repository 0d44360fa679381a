#!/usr/bin/env bash
# integration/shim-v2-memory.sh [-n N] [-s SETTLE] [-o DIR] [RUNTIME_TYPE...]
#
# Memory of containerd's per-container shims for N idle containers (`sleep 100000`, busybox)
# started by a private containerd (own config, root, state, sockets; CRI plugin off) with
# `ctr run -d --runtime TYPE`: io.containerd.berth.v2 (this checkout's release shim and berth)
# next to io.containerd.runc.v2 (Debian's shim and runc) by default. After SETTLE seconds every
# shim process is read: VmRSS and PSS (smaps_rollup); per-container MiB is the mean over shims.
# Everything runs in a private mount namespace under a child subreaper, and is removed on exit.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
if [ -z "${SHIMMEM_INNER:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "shim-v2-memory.sh: must run as root" >&2; exit 2; }
  export SHIMMEM_INNER=1
  # Shims reparent to the nearest subreaper when their starter exits: make it us, not PID 1
  # (which does not reap here).
  exec unshare -m --propagation private -- python3 -c '
import ctypes, os, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
st = 0
while True:
    try:
        p, s = os.wait()
    except ChildProcessError:
        break
    if p == pid:
        st = os.waitstatus_to_exitcode(s)
sys.exit(st)' "$0" "$@"
fi
N=5 SETTLE=3 OUT=
while [ $# -gt 0 ]; do
  case $1 in
    -n) N=$2; shift 2 ;;
    -s) SETTLE=$2; shift 2 ;;
    -o) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
TYPES=("$@")
[ ${#TYPES[@]} -gt 0 ] || TYPES=(io.containerd.berth.v2 io.containerd.runc.v2)
BIN=$TOP/target/release
[ -x "$BIN/containerd-shim-berth-v2" ] && [ -x "$BIN/berth" ] || { echo "build first: make release" >&2; exit 2; }
W=$(mktemp -d /tmp/berth-shimv2-mem.XXXXXX)
C=(ctr --address "$W/sock" -n berth-shimv2-mem)
. "$TOP/integration/lib-containerd.sh"
cleanup() {
  local id
  if [ -n "$CTRD_PID" ]; then
    for id in $("${C[@]}" tasks ls -q 2>/dev/null); do
      timeout 10 "${C[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 0.5
    for id in $("${C[@]}" containers ls -q 2>/dev/null); do
      timeout 10 "${C[@]}" tasks rm -f "$id" >/dev/null 2>&1 || true
      timeout 10 "${C[@]}" containers rm "$id" >/dev/null 2>&1 || true
    done
    ctrd_stop
  fi
  awk -v w="$W" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  for d in /sys/fs/cgroup/*/berth-shimv2-mem /sys/fs/cgroup/berth-shimv2-mem; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  rm -rf "$W"
  # The shims' runtime state roots for this namespace, empty once every container is deleted.
  rmdir /run/containerd/berth/berth-shimv2-mem /run/containerd/runc/berth-shimv2-mem /run/containerd/berth 2>/dev/null || true
}
trap cleanup EXIT

mkdir -p "$W/rootfs/bin" "$W/rootfs/proc" "$W/rootfs/dev" "$W/rootfs/sys"
cp "$(command -v busybox)" "$W/rootfs/bin/busybox"
ln -s busybox "$W/rootfs/bin/sleep"
ctrd_config "$W"
CTRD_PATH=$BIN:$PATH ctrd_start "$W" || { echo "containerd did not start: $(tail -5 "$W/log")" >&2; exit 1; }

kib() { awk -v k="$2" '$1 == k":" {print $2}' "$1" 2>/dev/null || echo 0; }
[ -z "$OUT" ] || mkdir -p "$OUT"
printf '%-24s %5s | %9s %9s | %s\n' "shim (runtime type)" N "RSS MiB" "PSS MiB" "per container, mean over shims"
for t in "${TYPES[@]}"; do
  for i in $(seq "$N"); do
    timeout 30 "${C[@]}" run -d --runtime "$t" --rootfs --cgroup "/berth-shimv2-mem/${t##*.containerd.}-$i" \
      "$W/rootfs" "m-${t//./-}-$i" /bin/sleep 100000 >/dev/null
  done
  sleep "$SETTLE"
  rss=0 pss=0 n=0
  for p in $(pgrep -f -- "-namespace berth-shimv2-mem -id m-${t//./-}-" || true); do
    rss=$((rss + $(kib "/proc/$p/status" VmRSS)))
    pss=$((pss + $(kib "/proc/$p/smaps_rollup" Pss)))
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || { echo "$t: no shim processes found" >&2; exit 1; }
  printf '%-24s %5d | %9.2f %9.2f | %d shims\n' "$t" "$N" "$(echo "$rss/$n/1024" | bc -l)" "$(echo "$pss/$n/1024" | bc -l)" "$n"
  [ -z "$OUT" ] || echo "$t $N $rss $pss $n" >> "$OUT/shim-v2-memory.txt"
  for id in $("${C[@]}" tasks ls -q); do timeout 10 "${C[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  sleep 0.5
  for id in $("${C[@]}" containers ls -q); do
    timeout 10 "${C[@]}" tasks rm -f "$id" >/dev/null 2>&1 || true
    timeout 10 "${C[@]}" containers rm "$id" >/dev/null 2>&1 || true
  done
done
