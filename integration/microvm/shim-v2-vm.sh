#!/bin/sh
# shim-v2-vm.sh BIN_DIR — runs inside the cgroup v2 microVM (run-tests.sh stages it): a private
# containerd drives containerd-shim-berth-v2 (BIN_DIR, with berth beside it) on a pure cgroup v2
# hierarchy, where its OOM notifications (inotify on memory.events) and stats differ from the v1
# host's. Checks: a foreground run's output and exit code; an OOM kill the init survives gives
# /tasks/oom while the task still runs; `task metrics` shows the memory limit; after delete no
# cgroup, runtime state or shim is left. Prints PASS/FAIL lines; exit status 1 on any FAIL.
BIN=$1
W=/tmp/shimv2-vm
status=0
pass() { echo "PASS shim-v2 $1"; }
fail() { echo "FAIL shim-v2 $1"; status=1; }
mkdir -p "$W/rootfs/bin" "$W/rootfs/proc" "$W/rootfs/dev" "$W/rootfs/sys" /run
# ash's `command -v` names an applet, not a file: look for the binary.
for bb in /bin/busybox /usr/bin/busybox /sbin/busybox; do [ -x "$bb" ] && break; done
cp "$bb" "$W/rootfs/bin/busybox" || fail "no busybox binary to copy"
for a in sh sleep head tail; do ln -s busybox "$W/rootfs/bin/$a"; done
# run-tests.sh stages the library beside this script.
. "$(dirname "$0")/lib-containerd.sh"
ctrd_config "$W"
CTRD_PATH=$BIN:$PATH ctrd_start "$W" || { fail "containerd did not start: $(tail -3 "$W/log")"; exit 1; }
C="ctr --address $W/sock -n vm"
RT="--runtime io.containerd.berth.v2 --rootfs"

out=$($C run --rm $RT --cgroup /berth/shimv2-run "$W/rootfs" run1 /bin/sh -c 'echo hello-v2; exit 7' 2>&1)
rc=$?
if [ $rc = 7 ] && [ "$out" = hello-v2 ]; then pass run; else fail "run: exit $rc, output: $out"; fi

$C events > "$W/events" 2>&1 &
EV=$!
sleep 1
$C run -d $RT --memory-limit 67108864 --cgroup /berth/shimv2-oom "$W/rootfs" oom1 \
  /bin/sh -c 'head -c 200000000 /dev/zero | (echo 1000 > /proc/self/oom_score_adj; exec tail); exec sleep 1000' >/dev/null 2>"$W/err" || fail "run -d: $(cat "$W/err")"
i=0
until grep -q "/tasks/oom" "$W/events"; do
  i=$((i + 1)); [ $i -lt 150 ] || break
  sleep 0.2
done
st=$($C task ls | awk '$1 == "oom1" {print $3}')
if grep -q "/tasks/oom" "$W/events" && [ "$st" = RUNNING ]; then pass oom-while-running
else fail "oom-while-running: events: $(grep -o '/tasks/[a-z-]*' "$W/events" | tr '\n' ' '), status $st"; fi
if $C task metrics oom1 2>&1 | grep -Eq '^memory.limit_in_bytes +67108864'; then pass metrics
else fail "metrics: $($C task metrics oom1 2>&1 | head -8 | tr '\n' ' ')"; fi
$C task kill -s SIGKILL oom1 >/dev/null 2>&1
i=0
until [ "$($C task ls | awk '$1 == "oom1" {print $3}')" = STOPPED ]; do
  i=$((i + 1)); [ $i -lt 100 ] || break
  sleep 0.1
done
$C task rm oom1 >/dev/null 2>&1
$C container rm oom1 >/dev/null 2>&1
kill $EV 2>/dev/null
sleep 0.5
left=""
[ ! -e /sys/fs/cgroup/berth/shimv2-oom ] || left="$left cgroup"
[ ! -e /run/containerd/berth/vm/oom1 ] || left="$left runtime-state"
ps | grep -v grep | grep -q "containerd-shim-berth-v2.* -id oom1" && left="$left shim"
if [ -z "$left" ]; then pass nothing-left; else fail "left after delete:$left"; fi
ctrd_stop
exit $status
