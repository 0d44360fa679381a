#!/usr/bin/env bash
# integration/shim-v2.sh [-r RUNTIME_TYPE] [-b BIN_DIR] [-R OCI_RUNTIME]
#
# Checks a containerd shim v2 (default runtime type io.containerd.berth.v2, binary
# containerd-shim-berth-v2) through a private containerd and ctr, the way containerd 1.6 drives
# it: foreground run, signals, detached lifecycle (ps, pause/resume, exec, kill, delete and
# nothing left after), tty exec and tty init, a process that cannot start, a failing exec, stdin,
# bulk stdout, the shim's events, a containerd restart under a running task, and an exit nobody
# waited for. The checks are shim-agnostic: they must pass with -r io.containerd.runc.v2,
# which is how we know they test containerd's contract and not our reading of it.
#
#   -r RUNTIME_TYPE  containerd runtime type (default io.containerd.berth.v2)
#   -b BIN_DIR       prepended to containerd's PATH, where containerd looks up the shim binary
#                    (default: <repo>/target/release, else <repo>/target/debug)
#   -R OCI_RUNTIME   runc-compatible binary the shim runs (runc Options.BinaryName, i.e. ctr
#                    --runc-binary). Default: the shim's own choice (runc.v2: runc in PATH).
#                    ctr 1.6 sends these Options for io.containerd.runc.v2 only, so for another
#                    type the shim is run under the runc.v2 name (see CTR_RUNTIME below).
#
# SHIMV2_CASES="case ..." runs only those cases; SHIMV2_KEEP_LOG=FILE keeps containerd's log.
# Output: one `PASS name` / `FAIL name: reason` / `SKIP name: reason` line per case; exit 0
# only when no case failed. Root only; everything runs in a private mount namespace, under a
# mktemp dir in /tmp, cgroups under /berth-shimv2-it, ctr namespace berth-shimv2-it, and is
# removed on exit, on failure too.

# The re-exec below makes shellcheck take everything after it for unreachable code.
# shellcheck disable=SC2317
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
SELF=$HERE/$(basename "$0")

if [ -z "${SHIMV2_IT_INNER:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "shim-v2.sh: must run as root" >&2; exit 2; }
  export SHIMV2_IT_INNER=1
  # PID 1 of the test VMs does not reap orphans: a daemonized shim (its `start` parent exits) is
  # reparented to the nearest child subreaper. Making this script that subreaper keeps exited
  # shims and container processes from piling up as zombies (bash reaps unknown children).
  PY=$(command -v /usr/bin/python3 python3 2>/dev/null | head -1 || true)
  if [ -n "$PY" ]; then
    exec "$PY" -c 'import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    sys.exit("shim-v2.sh: prctl(PR_SET_CHILD_SUBREAPER) failed")
os.execvp(sys.argv[1], sys.argv[1:])' unshare -m --propagation private -- "$SELF" "$@"
  fi
  echo "shim-v2.sh: warning: no python3, running without a child subreaper" >&2
  exec unshare -m --propagation private -- "$SELF" "$@"
fi

RUNTIME_TYPE=io.containerd.berth.v2
BIN_DIR=""
OCI=""
usage() { awk 'NR == 1 {next} /^#/ {sub(/^# ?/, ""); print; next} {exit}' "$SELF"; exit 2; }
while getopts "r:b:R:h" opt; do
  case $opt in
    r) RUNTIME_TYPE=$OPTARG ;;
    b) BIN_DIR=$OPTARG ;;
    R) OCI=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# = 0 ] || usage
die() { echo "shim-v2.sh: $*" >&2; exit 2; }

if [ -z "$BIN_DIR" ]; then
  for d in "$TOP/target/release" "$TOP/target/debug"; do [ -d "$d" ] && BIN_DIR=$d && break; done
fi
[ -z "$BIN_DIR" ] || BIN_DIR=$(readlink -f "$BIN_DIR")
if [ -n "$OCI" ]; then
  [ -x "$OCI" ] || die "OCI runtime $OCI is not executable"
  OCI=$(readlink -f "$OCI")
fi
for t in containerd ctr busybox timeout; do command -v "$t" >/dev/null || die "$t not found"; done

# containerd's own mapping of a runtime type to its shim binary: io.containerd.NAME.VERSION
# -> containerd-shim-NAME-VERSION, looked up in containerd's PATH.
shim_binary_name() {
  local rest=${1%.*} ver=${1##*.}
  echo "containerd-shim-${rest##*.}-$ver"
}
SHIM_NAME=$(shim_binary_name "$RUNTIME_TYPE")
CTRD_PATH=${BIN_DIR:+$BIN_DIR:}$PATH
SHIM_BIN=$(PATH=$CTRD_PATH command -v "$SHIM_NAME" || true)
[ -n "$SHIM_BIN" ] || die "$SHIM_NAME not found in ${BIN_DIR:-PATH} (cargo build --release first)"
SHIM_BIN=$(readlink -f "$SHIM_BIN")

NS=berth-shimv2-it
CG_PARENT=berth-shimv2-it
W=$(mktemp -d /tmp/berth-shimv2-it.XXXXXX)
RUNID=${W##*.}
D=$W/ctrd
SOCK=$D/sock
. "$HERE/lib-containerd.sh"
FAILED=0
CASE_IDS=()

# ctr 1.6 sends runc Options (BinaryName, Root) only when the runtime name is literally
# io.containerd.runc.v2 ("specifying runc-binary ... is only supported for io.containerd.runc.v2").
# To hand another shim the same Options, the shim is installed under the runc.v2 binary name in
# a directory of our own at the head of containerd's PATH, and ctr asks for io.containerd.runc.v2.
CTR_RUNTIME=$RUNTIME_TYPE
if [ -n "$OCI" ] && [ "$RUNTIME_TYPE" != io.containerd.runc.v2 ]; then
  mkdir -p "$W/shim-alias"
  ln -s "$SHIM_BIN" "$W/shim-alias/containerd-shim-runc-v2"
  CTRD_PATH=$W/shim-alias:$CTRD_PATH
  CTR_RUNTIME=io.containerd.runc.v2
fi

# Foreground ctr run/exec forward SIGTERM to the task (an init ignores it), hence -k.
# ctr run and exec always forward ctr's stdin to the task: give them none unless a case wants it.
# Without runc Options, runc.v2 keeps runc state under /run/containerd/runc/<namespace>: remove
# that directory at the end when this run created it and it is empty again.
DEFAULT_RUNC_ROOT=/run/containerd/runc/$NS
[ -e "$DEFAULT_RUNC_ROOT" ] && DEFAULT_RUNC_ROOT=""

c() { timeout -k 5 "${T:-30}" ctr --address "$SOCK" -n "$NS" "$@" </dev/null; }

start_containerd() { ctrd_start "$D" --log-level debug; }
stop_containerd() { ctrd_stop "$@"; }

# Processes whose command line names our temp dir: shims carry `-address $W/ctrd/sock`, so this
# never matches another run's (or the host's) shims, even in the same ctr namespace.
our_pids() {
  local pid args
  while read -r pid args; do
    [ "$pid" = $$ ] && continue
    case $args in *"$W"*) echo "$pid" ;; esac
  done < <(ps -eo pid=,args=)
}

cgroup_dirs() {
  local id d
  for id in "${CASE_IDS[@]}"; do
    for d in /sys/fs/cgroup/*/"$CG_PARENT/$id" /sys/fs/cgroup/"$CG_PARENT/$id"; do
      [ -d "$d" ] && echo "$d"
    done
  done
  return 0
}

cleanup() {
  set +e
  if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
    local id
    for id in $(T=10 c task ls -q 2>/dev/null); do
      T=10 c task kill -s SIGKILL "$id" >/dev/null 2>&1
      T=10 c task rm -f "$id" >/dev/null 2>&1
    done
    for id in $(T=10 c container ls -q 2>/dev/null); do T=10 c container rm "$id" >/dev/null 2>&1; done
  fi
  stop_containerd
  local pid d p m id
  for pid in $(our_pids); do kill -KILL "$pid" 2>/dev/null; done
  # Container processes left by a shim that died: found by pid in the cgroups we created.
  for d in $(cgroup_dirs); do
    while read -r p; do kill -KILL "$p" 2>/dev/null; done < "$d/cgroup.procs"
  done
  for d in $(cgroup_dirs); do
    [ -f "$d/freezer.state" ] && echo THAWED > "$d/freezer.state" 2>/dev/null
  done
  sleep 0.2
  awk -v w="$W" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  for d in $(cgroup_dirs | sort -r); do rmdir "$d" 2>/dev/null; done
  for id in "${CASE_IDS[@]}"; do
    p=$(conventional_socket "$id"); [ -S "$p" ] && rm -f "$p"
  done
  # The shared parent goes only when no other run still uses it.
  for d in /sys/fs/cgroup/*/"$CG_PARENT" /sys/fs/cgroup/"$CG_PARENT"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  [ -z "${SHIMV2_KEEP_LOG:-}" ] || cp "$D/log" "$SHIMV2_KEEP_LOG"
  [ -z "$DEFAULT_RUNC_ROOT" ] || rmdir "$DEFAULT_RUNC_ROOT" 2>/dev/null
  # berth's shim keeps its runtime state under /run/containerd/berth/<namespace>: empty once
  # every container is deleted, removed when no other run uses it.
  rmdir "/run/containerd/berth/$NS" /run/containerd/berth 2>/dev/null
  # ctr's own stdio fifo directories: ctr removes them itself unless it was killed (the
  # timeouts, the containerd restart case). Only directories holding nothing but fifos named
  # after this run's ids (s2-RUNID-...) go.
  for d in /run/containerd/fifo/*/; do
    d=${d%/}
    [ -d "$d" ] || continue
    [ -z "$(find "$d" -mindepth 1 ! -name "s2-$RUNID-*" -print -quit)" ] || continue
    [ -n "$(find "$d" -mindepth 1 -name "s2-$RUNID-*" -print -quit)" ] && rm -rf "$d"
  done
  rm -rf "$W"
}
trap cleanup EXIT
# A signal ends the run through exit, so that the EXIT trap cleans up.
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# --- a busybox rootfs, applets as symlinks -------------------------------------------------
R=$W/rootfs
busybox_rootfs "$R"

# --- a private containerd ------------------------------------------------------------------
mkdir -p "$D/opt"
ctrd_config "$D" "[plugins.\"io.containerd.internal.v1.opt\"]
  path = \"$D/opt\""
start_containerd || { echo "containerd did not start: $(tail -5 "$D/log")" >&2; exit 1; }
TASK_STATE=$D/state/io.containerd.runtime.v2.task/$NS

# --- helpers for the cases -----------------------------------------------------------------
REASON=""
BG_PIDS=()
PROBES=0

# start_events FILE: `ctr events` into FILE until the case ends (run_case stops it). timeout
# itself goes in the background, not a subshell running it, so that its kill reaches ctr.
# The subscription is live once a probe container's /containers/create event (containerd's own)
# shows up: a fixed sleep would lose the first task events on a loaded machine.
start_events() {
  timeout -k 5 120 ctr --address "$SOCK" -n "$NS" events >"$1" 2>&1 &
  BG_PIDS+=("$!")
  local probe=s2-$RUNID-probe$((PROBES += 1))
  for _ in $(seq 50); do
    c container create --rootfs "$R" "$probe" true >/dev/null 2>&1 || true
    c container rm "$probe" >/dev/null 2>&1 || true
    grep -qF "\"$probe\"" "$1" && return 0
    sleep 0.1
  done
  fail "ctr events saw nothing within 5 s"
}

stop_bg() {
  local p
  # || true: a killed job's status would trip errexit in run_case
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  BG_PIDS=()
}
fail() { REASON=$*; return 1; }
# End a case's task: SIGKILL, wait for STOPPED, remove the task and the container.
remove_task() {
  c task kill -s SIGKILL "$1" >/dev/null 2>&1
  wait_status "$1" STOPPED || return 1
  c task rm "$1" >/dev/null 2>&1
  c container rm "$1" >/dev/null 2>&1 || fail "container rm failed"
}

new_id() { ID=s2-$RUNID-$1; CASE_IDS+=("$ID"); }

# ctr run options for container $1: the cgroup under our parent, the runtime, and the OCI
# runtime with a runc root inside the temp dir (runc.v2's default is /run/containerd/runc).
run_opts() {
  # ctr's spec for a bare rootfs has no PATH for the exec lookup of "sh" by runc.
  RO=(--rootfs --runtime "$CTR_RUNTIME" --cgroup "/$CG_PARENT/$1" --env PATH=/bin)
  if [ "$CTR_RUNTIME" = io.containerd.runc.v2 ]; then
    RO+=(--runc-root "$W/runc-root")
    [ -z "$OCI" ] || RO+=(--runc-binary "$OCI")
  fi
}

# task_field ID COLUMN: from `ctr task ls` (TASK PID STATUS), column 2 = pid, 3 = status
task_field() { c task ls 2>/dev/null | awk -v id="$1" -v col="$2" '$1 == id {print $col}'; }

wait_status() { # ID STATUS [tries of 0.1 s]
  local s
  for _ in $(seq "${3:-100}"); do
    s=$(task_field "$1" 3)
    [ "$s" = "$2" ] && return 0
    sleep 0.1
  done
  fail "task $1 status '${s:-none}', want $2"
}

# start_time PID: field 22 of /proc/PID/stat, to tell a pid from a later reuse of it
start_time() { awk '{sub(/^.*\) /, ""); print $20}' "/proc/$1/stat" 2>/dev/null; }

freezer_state() { # PID -> the freezer state of its cgroup (v1 freezer.state or v2 cgroup.freeze)
  local path
  path=$(awk -F: '$2 == "freezer" {print $3}' "/proc/$1/cgroup")
  if [ -n "$path" ]; then cat "/sys/fs/cgroup/freezer$path/freezer.state"; return; fi
  path=$(awk -F: '$1 == "0" {print $3}' "/proc/$1/cgroup")
  case $(cat "/sys/fs/cgroup$path/cgroup.freeze" 2>/dev/null) in 1) echo FROZEN ;; *) echo THAWED ;; esac
}

# ctr 1.6 `task rm` exits 0 and reports a non-zero exit status (from the shim's Delete reply)
# as a warning: "task ID exit with non-zero exit code N".
task_rm_reports() { # ID STATUS
  local out rc=0
  out=$(c task rm "$1" 2>&1) || rc=$?
  [ "$rc" = 0 ] || fail "ctr task rm exit $rc: $out" || return 1
  grep -q "exit with non-zero exit code $2\"" <<<"$out" || fail "ctr task rm: '$out', want exit code $2"
}

# After a task and its container are removed: nothing of it may remain.
# shim_sockets PID: filesystem paths of the unix sockets PID holds (its ttrpc listener)
shim_sockets() {
  local f inodes=" "
  for f in /proc/"$1"/fd/*; do
    f=$(readlink "$f" 2>/dev/null) || continue
    case $f in socket:\[*\]) f=${f#socket:[}; inodes="$inodes${f%]} " ;; esac
  done
  awk -v list="$inodes" 'NR > 1 && $8 ~ /^\// && index(list, " " $7 " ") {print $8}' /proc/net/unix | sort -u
}

# The socket a runc.v2-style shim listens on (containerd/runtime/v2/shim SocketAddress):
# /run/containerd/s/sha256(ADDRESS/NAMESPACE/ID). Used only to clear a shim's leftovers.
conventional_socket() { echo "/run/containerd/s/$(printf '%s' "$SOCK/$NS/$1" | sha256sum | cut -d' ' -f1)"; }

check_gone() { # ID INIT_PID INIT_START SHIM_PID SHIM_START SHIM_SOCKETS
  local id=$1 sock
  for _ in $(seq 50); do
    [ "$(start_time "$4")" != "$5" ] && break
    sleep 0.1
  done
  [ "$(start_time "$4")" != "$5" ] || fail "shim pid $4 still running after delete" || return 1
  [ "$(start_time "$2")" != "$3" ] || fail "container init pid $2 still there after delete" || return 1
  local left
  left=$(pgrep -af -- "$id" || true)
  [ -z "$left" ] || fail "process mentioning $id left: $left" || return 1
  ! grep -qF -- "$TASK_STATE/$id" /proc/self/mountinfo || fail "mount left under $TASK_STATE/$id" || return 1
  [ ! -e "$TASK_STATE/$id" ] || fail "bundle $TASK_STATE/$id left" || return 1
  left=$(ls -d /sys/fs/cgroup/*/"$CG_PARENT/$id" /sys/fs/cgroup/"$CG_PARENT/$id" 2>/dev/null || true)
  [ -z "$left" ] || fail "cgroup left: $left" || return 1
  c container info "$id" >/dev/null 2>&1 && { fail "container $id still known to containerd"; return 1; }
  # The OCI runtime's own state directory for the id, wherever the shim put its root.
  left=$(find "$W/runc-root" /run/containerd/runc /run/containerd/berth -maxdepth 3 -name "$id" 2>/dev/null || true)
  [ -z "$left" ] || fail "runtime state left: $left" || return 1
  for sock in $6; do
    [ ! -e "$sock" ] || fail "shim socket $sock left" || return 1
  done
  return 0
}

# --- the cases -----------------------------------------------------------------------------

# Exit code and both streams of a foreground task, each on its own stream.
case_run_output_exit() {
  new_id out; run_opts "$ID"
  local rc=0
  c run --rm "${RO[@]}" "$R" "$ID" sh -c 'echo out; echo err >&2; exit 7' >"$W/$ID.out" 2>"$W/$ID.err" || rc=$?
  [ "$rc" = 7 ] || fail "ctr run exit $rc, want 7; stderr: $(head -c 300 "$W/$ID.err")" || return 1
  [ "$(cat "$W/$ID.out")" = out ] || fail "stdout '$(head -c 200 "$W/$ID.out")', want 'out'" || return 1
  [ "$(cat "$W/$ID.err")" = err ] || fail "stderr '$(head -c 200 "$W/$ID.err")', want 'err'" || return 1
  c container info "$ID" >/dev/null 2>&1 && { fail "container left after run --rm"; return 1; }
  return 0
}

# A foreground `ctr run` waiting on a task that ctr kills from outside: the exit by signal must
# reach the waiter as 128+9, and a child killed by a signal inside must not count as the init's.
case_signal_exit() {
  new_id sig; run_opts "$ID"
  local rc=0 bg
  timeout -k 5 30 ctr --address "$SOCK" -n "$NS" run --rm "${RO[@]}" "$R" "$ID" \
    sh -c 'sh -c "kill -TERM \$\$"; echo child=$?; exec sleep 1000' >"$W/$ID.out" 2>&1 &
  bg=$!
  BG_PIDS+=("$bg")
  wait_status "$ID" RUNNING || return 1
  for _ in $(seq 50); do grep -q child= "$W/$ID.out" && break; sleep 0.1; done
  c task kill -s SIGKILL "$ID" >/dev/null 2>&1 || fail "ctr task kill failed" || return 1
  wait "$bg" || rc=$?
  BG_PIDS=()
  [ "$rc" = 137 ] || fail "ctr run exit $rc after SIGKILL, want 137; output: $(head -c 300 "$W/$ID.out")" || return 1
  grep -qx child=143 "$W/$ID.out" || fail "inner child killed by SIGTERM: got '$(head -c 200 "$W/$ID.out")', want child=143" || return 1
  return 0
}

# The detached lifecycle, each step through the shim's RPCs: Create/Start, State, Pids,
# Pause/Resume, Exec, Kill, Delete, Shutdown.
case_detached_lifecycle() {
  new_id life; run_opts "$ID"
  local out rc pid shim shim_start init_start socks
  start_events "$W/$ID.events" || return 1
  c run -d "${RO[@]}" "$R" "$ID" sh -c 'trap "exit 42" TERM; sleep 1000 & wait' >/dev/null 2>"$W/$ID.err" ||
    fail "ctr run -d failed: $(head -c 300 "$W/$ID.err")" || return 1
  wait_status "$ID" RUNNING || return 1
  pid=$(task_field "$ID" 2)
  [[ $pid =~ ^[1-9][0-9]*$ ]] || fail "task ls pid '$pid'" || return 1
  kill -0 "$pid" 2>/dev/null || fail "pid $pid from task ls is not alive on the host" || return 1
  init_start=$(start_time "$pid")
  [ "$(stat -Lc %d:%i "/proc/$pid/root")" != "$(stat -Lc %d:%i /)" ] || fail "pid $pid has the host's root" || return 1
  [ "$(readlink "/proc/$pid/ns/pid")" != "$(readlink /proc/self/ns/pid)" ] || fail "pid $pid in the host pid namespace" || return 1
  grep -q ":/$CG_PARENT/$ID\$" "/proc/$pid/cgroup" || fail "pid $pid not in cgroup /$CG_PARENT/$ID: $(tr '\n' ' ' < "/proc/$pid/cgroup")" || return 1
  # The init's parent is the shim (it reaps the init); it must be the binary containerd found.
  shim=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status")
  shim_start=$(start_time "$shim")
  [ "$(readlink -f "/proc/$shim/exe")" = "$SHIM_BIN" ] || fail "init's parent $shim is $(readlink -f "/proc/$shim/exe"), want $SHIM_BIN" || return 1
  socks=$(shim_sockets "$shim")
  out=$(c task ps "$ID" 2>&1) || fail "ctr task ps: $out" || return 1
  awk 'NR > 1 {print $1}' <<<"$out" | grep -qx "$pid" || fail "task ps does not list $pid: $out" || return 1

  out=$(c task pause "$ID" 2>&1) || fail "ctr task pause: $out" || return 1
  wait_status "$ID" PAUSED || return 1
  [ "$(freezer_state "$pid")" = FROZEN ] || fail "paused but freezer state '$(freezer_state "$pid")'" || return 1
  out=$(c task resume "$ID" 2>&1) || fail "ctr task resume: $out" || return 1
  wait_status "$ID" RUNNING || return 1
  [ "$(freezer_state "$pid")" = THAWED ] || fail "resumed but freezer state '$(freezer_state "$pid")'" || return 1

  rc=0
  c task exec --exec-id e1 "$ID" sh -c 'echo exec-out; echo exec-err >&2; exit 3' >"$W/$ID.eout" 2>"$W/$ID.eerr" || rc=$?
  [ "$rc" = 3 ] || fail "exec exit $rc, want 3: $(head -c 300 "$W/$ID.eerr")" || return 1
  [ "$(cat "$W/$ID.eout")" = exec-out ] || fail "exec stdout '$(head -c 200 "$W/$ID.eout")'" || return 1
  [ "$(cat "$W/$ID.eerr")" = exec-err ] || fail "exec stderr '$(head -c 200 "$W/$ID.eerr")'" || return 1
  # An exec id is free again once its process is gone (containerd deletes the exec after wait).
  rc=0
  out=$(c task exec --exec-id e1 "$ID" true 2>&1) || rc=$?
  [ "$rc" = 0 ] || fail "second exec with id e1: exit $rc: $out" || return 1

  out=$(c task kill "$ID" 2>&1) || fail "ctr task kill: $out" || return 1
  wait_status "$ID" STOPPED || return 1
  task_rm_reports "$ID" 42 || return 1
  out=$(c container rm "$ID" 2>&1) || fail "ctr container rm: $out" || return 1
  check_gone "$ID" "$pid" "$init_start" "$shim" "$shim_start" "$socks" || return 1
  sleep 0.3
  stop_bg
  expect_events "$ID" /tasks/create /tasks/start /tasks/paused /tasks/resumed /tasks/exec-added \
    /tasks/exec-started /tasks/exit /tasks/delete || return 1
  # Two execs and the init: three exits, the execs' with their exec ids.
  [ "$(grep -F " /tasks/exit " "$W/$ID.events" | grep -cF "\"container_id\":\"$ID\"")" = 3 ] ||
    fail "want 3 /tasks/exit events (2 execs, init): $(grep -F " /tasks/exit " "$W/$ID.events" | cut -c1-200)" || return 1
  grep -F " /tasks/exit " "$W/$ID.events" | grep -F '"id":"e1"' | grep -q '"exit_status":3' ||
    fail "no /tasks/exit for exec e1 with exit_status 3: $(grep -F " /tasks/exit " "$W/$ID.events" | cut -c1-300)"
}

# expect_events ID TOPIC...: each topic was published for container ID (ctr events lines are
# "DATE TIME ZONE UTC NAMESPACE TOPIC JSON").
expect_events() {
  local id=$1 t missing=""
  shift
  for t in "$@"; do
    grep -F -- "\"$id\"" "$W/$id.events" | grep -qF " $t " || missing="$missing $t"
  done
  [ -z "$missing" ] || fail "no event for $id:$missing; got: $(grep -F -- "$id" "$W/$id.events" | grep -o ' /[a-z/-]* ' | tr -d '\n')"
}

# Exec with a terminal: ctr needs a tty of its own, which script(1) provides.
case_exec_tty() {
  command -v script >/dev/null || { REASON="SKIP: script(1) not installed"; return 1; }
  new_id tty; run_opts "$ID"
  local out rc=0
  c run -d "${RO[@]}" "$R" "$ID" sleep 1000 >/dev/null 2>"$W/$ID.err" || fail "ctr run -d: $(head -c 300 "$W/$ID.err")" || return 1
  wait_status "$ID" RUNNING || return 1
  out=$(timeout -k 5 30 script -qec "ctr --address $SOCK -n $NS task exec -t --exec-id t1 $ID sh -c 'tty; exit 5'" /dev/null </dev/null 2>&1) || rc=$?
  [ "$rc" = 5 ] || fail "tty exec exit $rc, want 5: $out" || return 1
  grep -q '/dev/pts/[0-9]' <<<"$out" || fail "tty exec output has no /dev/pts: $out" || return 1
  remove_task "$ID"
}

# The init on a terminal (console socket at create): ctr under script(1) for a tty of its own.
case_run_tty() {
  command -v script >/dev/null || { REASON="SKIP: script(1) not installed"; return 1; }
  new_id rtty; run_opts "$ID"
  local out rc=0
  out=$(timeout -k 5 30 script -qec "ctr --address $SOCK -n $NS run -t --rm ${RO[*]} $R $ID sh -c 'tty; exit 9'" /dev/null </dev/null 2>&1) || rc=$?
  [ "$rc" = 9 ] || fail "ctr run -t exit $rc, want 9: $out" || return 1
  # Not anchored: the terminal may put bytes of its own ahead of the output (a NUL byte with runc.v2).
  grep -qE '/dev/(pts/[0-9]+|console)' <<<"$out" || fail "no terminal in the task: $out" || return 1
  c container info "$ID" >/dev/null 2>&1 && { fail "container left after run -t --rm"; return 1; }
  return 0
}

# A task whose process cannot start: ctr fails, and nothing of it is left behind.
case_start_failure() {
  new_id nostart; run_opts "$ID"
  local out rc=0 left
  out=$(c run --rm "${RO[@]}" "$R" "$ID" /bin/no-such-binary 2>&1) || rc=$?
  [ "$rc" != 0 ] || fail "ctr run of a missing binary exited 0: $out" || return 1
  grep -q no-such-binary <<<"$out" || fail "error does not name the binary: $out" || return 1
  sleep 0.5
  left=$(pgrep -af -- "$ID" || true)
  [ -z "$left" ] || fail "process left: $left" || return 1
  [ ! -e "$TASK_STATE/$ID" ] || fail "bundle $TASK_STATE/$ID left" || return 1
  left=$(ls -d /sys/fs/cgroup/*/"$CG_PARENT/$ID" /sys/fs/cgroup/"$CG_PARENT/$ID" 2>/dev/null || true)
  [ -z "$left" ] || fail "cgroup left: $left" || return 1
  c task ls -q | grep -qx -- "$ID" && { fail "task still listed"; return 1; }
  return 0
}

# A failing exec is an error for its caller only: the task runs on and takes further execs.
case_bad_exec() {
  new_id badx; run_opts "$ID"
  local out rc=0
  c run -d "${RO[@]}" "$R" "$ID" sleep 1000 >/dev/null 2>"$W/$ID.err" || fail "ctr run -d: $(head -c 300 "$W/$ID.err")" || return 1
  wait_status "$ID" RUNNING || return 1
  out=$(c task exec --exec-id x1 "$ID" /bin/no-such-binary 2>&1) || rc=$?
  [ "$rc" != 0 ] || fail "exec of a missing binary exited 0: $out" || return 1
  [ "$(task_field "$ID" 3)" = RUNNING ] || fail "task $(task_field "$ID" 3) after a failed exec" || return 1
  rc=0
  out=$(c task exec --exec-id x1 "$ID" sh -c 'echo fine' 2>&1) || rc=$?
  [ "$rc" = 0 ] && [ "$out" = fine ] || fail "exec after a failed exec (same id): exit $rc, '$out'" || return 1
  remove_task "$ID"
}

# stdin reaches the task and its EOF closes the task's stdin (ctr run always forwards stdin).
case_stdin() {
  new_id in; run_opts "$ID"
  local out rc=0
  # ctr 1.6 arms its CloseIO-on-EOF only after NewTask returns: an EOF before that is lost and
  # the task waits forever (seen with runc.v2 too), so the input comes a second late.
  out=$({ sleep 1; printf 'hello\nworld\n'; } | timeout -k 5 30 ctr --address "$SOCK" -n "$NS" run --rm "${RO[@]}" "$R" "$ID" sh -c 'cat; echo eof') || rc=$?
  [ "$rc" = 0 ] || fail "exit $rc, want 0 (124: stdin EOF never reached the task); output: $out" || return 1
  [ "$out" = $'hello\nworld\neof' ] || fail "output '$out', want hello, world, eof"
}

# 20 MB through the shim's stdout copy, byte for byte.
case_big_output() {
  new_id big; run_opts "$ID"
  local want got rc
  want=$(yes 0123456789abcdefghijklmnopqrstuvwxyz 2>/dev/null | head -c 20000000 | md5sum)
  got=$(T=120 c run --rm "${RO[@]}" "$R" "$ID" sh -c 'yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 20000000' 2>"$W/$ID.err" |
        tee >(wc -c > "$W/$ID.count") | md5sum; exit "${PIPESTATUS[0]}") && rc=0 || rc=$?
  sleep 0.1
  [ "$rc" = 0 ] || fail "ctr run exit $rc: $(head -c 300 "$W/$ID.err")" || return 1
  [ "$(cat "$W/$ID.count")" = 20000000 ] || fail "received $(cat "$W/$ID.count") bytes, want 20000000" || return 1
  [ "$got" = "$want" ] || fail "content differs (md5 $got)"
}

# The shim publishes the task events (containerd forwards them to subscribers).
case_events() {
  new_id ev; run_opts "$ID"
  local rc=0 order
  start_events "$W/$ID.events" || return 1
  c run --rm "${RO[@]}" "$R" "$ID" sh -c 'exit 3' >/dev/null 2>&1 || rc=$?
  sleep 0.5
  stop_bg
  [ "$rc" = 3 ] || fail "ctr run exit $rc, want 3" || return 1
  expect_events "$ID" /containers/create /tasks/create /tasks/start /tasks/exit /tasks/delete /containers/delete || return 1
  grep -F " /tasks/exit " "$W/$ID.events" | grep -F -- "\"$ID\"" | grep -q '"exit_status":3' ||
    fail "exit event without exit_status 3: $(grep -F " /tasks/exit " "$W/$ID.events" | head -c 300)" || return 1
  # The shim publishes in order (CRI's event handling depends on it): create, start, exit, delete.
  order=$(grep -F -- "\"$ID\"" "$W/$ID.events" | grep -oE ' /tasks/[a-z-]+ ' | tr -d ' ' | tr '\n' ' ')
  [ "$order" = "/tasks/create /tasks/start /tasks/exit /tasks/delete " ] || fail "task events in order: $order"
}

# The stats RPC: `ctr task metrics` decodes what the shim returns (cgroup v1 or v2 metrics).
case_metrics() {
  new_id met; run_opts "$ID"
  local out rc=0
  c run -d "${RO[@]}" "$R" "$ID" sleep 1000 >/dev/null 2>"$W/$ID.err" || fail "ctr run -d: $(head -c 300 "$W/$ID.err")" || return 1
  wait_status "$ID" RUNNING || return 1
  out=$(c task metrics "$ID" 2>&1) || rc=$?
  [ "$rc" = 0 ] || fail "ctr task metrics exit $rc: $out" || return 1
  grep -q "^$ID " <<<"$out" || fail "metrics not for $ID: $out" || return 1
  # One process in the task's cgroup: proves the numbers come from its cgroup, not a default.
  awk '$1 == "pids.current" {found = 1; ok = ($2 == 1)} END {exit !(found && ok)}' <<<"$out" ||
    fail "want pids.current 1: $(tr '\n' ' ' <<<"$out")" || return 1
  remove_task "$ID"
}

# A task killed by the OOM killer: exit 137 and a /tasks/oom event from the shim (CRI reports
# OOMKilled from that event).
case_oom() {
  new_id oom; run_opts "$ID"
  local rc=0
  start_events "$W/$ID.events" || return 1
  # tail holds its last "line", 200 MB of NULs without a newline: bounded if the limit is ignored.
  c run --rm "${RO[@]}" --memory-limit 33554432 "$R" "$ID" sh -c 'head -c 200000000 /dev/zero | tail' >"$W/$ID.out" 2>&1 || rc=$?
  sleep 0.5
  stop_bg
  [ "$rc" = 137 ] || fail "ctr run exit $rc, want 137: $(head -c 300 "$W/$ID.out")" || return 1
  expect_events "$ID" /tasks/oom
}

# A shim outlives containerd and is found again by the new containerd.
# An OOM kill the init survives (its child is killed): /tasks/oom must come while the task
# still runs, not only with an exit. The child volunteers (oom_score_adj 1000): the OOM killer's
# pick is otherwise the kernel's choice. 64 MiB, not 32: runc charges its own start-up (a copy
# of its binary) to the container's cgroup, and at 32 MiB the OOM killer sometimes struck before
# the child existed, taking the init.
case_oom_child() {
  new_id oomc; run_opts "$ID"
  start_events "$W/$ID.events" || return 1
  c run -d "${RO[@]}" --memory-limit 67108864 "$R" "$ID" sh -c 'head -c 200000000 /dev/zero | (echo 1000 > /proc/self/oom_score_adj; exec tail); exec sleep 1000' \
    >/dev/null 2>"$W/$ID.err" || { stop_bg; fail "ctr run -d: $(head -c 300 "$W/$ID.err")"; return 1; }
  local ok=""
  for _ in $(seq 100); do
    grep -F " /tasks/oom " "$W/$ID.events" 2>/dev/null | grep -qF -- "\"$ID\"" && { ok=1; break; }
    sleep 0.1
  done
  local st
  st=$(task_field "$ID" 3)
  stop_bg
  remove_task "$ID" || return 1
  [ -n "$ok" ] || fail "no /tasks/oom within 10 s while the task ran (status $st)" || return 1
  [ "$st" = RUNNING ] || fail "task $st after its child's OOM kill, want RUNNING" || return 1
}

case_containerd_restart() {
  new_id rst; run_opts "$ID"
  local pid shim shim_start init_start out rc socks
  c run -d "${RO[@]}" "$R" "$ID" sleep 1000 >/dev/null 2>"$W/$ID.err" || fail "ctr run -d: $(head -c 300 "$W/$ID.err")" || return 1
  wait_status "$ID" RUNNING || return 1
  pid=$(task_field "$ID" 2); init_start=$(start_time "$pid")
  shim=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status"); shim_start=$(start_time "$shim")
  socks=$(shim_sockets "$shim")
  stop_containerd -KILL
  sleep 0.5
  [ "$(start_time "$shim")" = "$shim_start" ] || fail "shim $shim died with containerd" || return 1
  # containerd 1.6 reloads a task from its bundle (the address file, then a Connect RPC); a
  # failure there is logged only as "cleaning up after shim disconnected".
  local bundle_files
  bundle_files=$(find "$TASK_STATE/$ID" -mindepth 1 -maxdepth 1 -printf '%f ' 2>&1)
  start_containerd || fail "containerd did not restart: $(tail -3 "$D/log")" || return 1
  if ! wait_status "$ID" RUNNING 50; then
    local alive=no
    [ "$(start_time "$shim")" = "$shim_start" ] && alive=yes
    fail "$REASON after the restart (shim $shim alive: $alive; bundle had: $bundle_files; address file: $(cat "$TASK_STATE/$ID/address" 2>&1))"
    return 1
  fi
  [ "$(task_field "$ID" 2)" = "$pid" ] || fail "pid after restart $(task_field "$ID" 2), want $pid" || return 1
  rc=0
  out=$(c task exec --exec-id r1 "$ID" sh -c 'echo again; exit 6' 2>&1) || rc=$?
  [ "$rc" = 6 ] && [ "$out" = again ] || fail "exec after restart: exit $rc, output '$out'" || return 1
  c task kill -s SIGKILL "$ID" >/dev/null 2>&1 || fail "kill after restart failed" || return 1
  wait_status "$ID" STOPPED || return 1
  task_rm_reports "$ID" 137 || return 1
  c container rm "$ID" >/dev/null 2>&1 || fail "container rm after restart failed" || return 1
  check_gone "$ID" "$pid" "$init_start" "$shim" "$shim_start" "$socks"
}

# A detached task exits while nobody waits: the shim keeps its exit status for State and Delete.
# A shim killed under a running container: containerd then runs the shim binary's `delete`
# for the task, which must end the container and leave nothing behind (process, cgroup, runtime
# state, socket). containerd-shim-runc-v2 (1.6.20) leaves the init running there, so that
# runtime type gets a SKIP.
case_shim_killed() {
  [ "$RUNTIME_TYPE" != io.containerd.runc.v2 ] ||
    { REASON="SKIP: containerd-shim-runc-v2's delete leaves the container's init running"; return 1; }
  new_id kld; run_opts "$ID"
  local pid shim shim_start init_start socks
  c run -d "${RO[@]}" "$R" "$ID" sleep 1000 >/dev/null 2>"$W/$ID.err" || fail "ctr run -d: $(head -c 300 "$W/$ID.err")" || return 1
  wait_status "$ID" RUNNING || return 1
  pid=$(task_field "$ID" 2); init_start=$(start_time "$pid")
  shim=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status"); shim_start=$(start_time "$shim")
  socks=$(shim_sockets "$shim")
  kill -KILL "$shim"
  for _ in $(seq 100); do [ "$(start_time "$pid")" != "$init_start" ] && break; sleep 0.1; done
  [ "$(start_time "$pid")" != "$init_start" ] || fail "init $pid still running 10 s after its shim was killed" || return 1
  c task rm -f "$ID" >/dev/null 2>&1
  c container rm "$ID" >/dev/null 2>&1 || fail "container rm failed" || return 1
  check_gone "$ID" "$pid" "$init_start" "$shim" "$shim_start" "$socks"
}

case_exit_no_wait() {
  new_id nowait; run_opts "$ID"
  local out rc=0
  c run -d "${RO[@]}" "$R" "$ID" sh -c 'exit 4' >/dev/null 2>"$W/$ID.err" || fail "ctr run -d: $(head -c 300 "$W/$ID.err")" || return 1
  sleep 0.5
  wait_status "$ID" STOPPED || return 1
  sleep 1
  [ "$(task_field "$ID" 3)" = STOPPED ] || fail "status changed after stop: $(task_field "$ID" 3)" || return 1
  task_rm_reports "$ID" 4 || return 1
  c task ls -q | grep -qx -- "$ID" && { fail "task still listed after rm"; return 1; }
  c container rm "$ID" >/dev/null 2>&1 || fail "container rm failed"
}

run_case() {
  local name=$1 log_at
  REASON=""
  log_at=$(wc -l < "$D/log")
  local ok=0
  "case_$name" || ok=$?
  stop_bg
  if [ "$ok" = 0 ]; then
    echo "PASS $name"
  elif [ "${REASON#SKIP: }" != "$REASON" ]; then
    echo "SKIP $name: ${REASON#SKIP: }"
  else
    echo "FAIL $name: ${REASON:-unexpected error}"
    # Warnings and errors say most (a dead shim, a failed load); the shim's plugin loading least.
    echo "  containerd log (warnings and errors during the case, then its last lines):"
    tail -n +"$((log_at + 1))" "$D/log" | grep -E 'level=(warning|error|fatal)' | tail -8 | cut -c1-600 | sed 's/^/    /'
    tail -n +"$((log_at + 1))" "$D/log" | grep -vE 'level=debug|loading plugin|^[[:space:]]*$' | tail -4 | cut -c1-600 | sed 's/^/    /'
    FAILED=1
  fi
}

echo "# runtime type $RUNTIME_TYPE (ctr --runtime $CTR_RUNTIME), shim $SHIM_BIN, OCI runtime ${OCI:-shim default}"
echo "# containerd $(containerd --version | awk '{print $3}'), work dir $W"
CASES=(run_output_exit signal_exit detached_lifecycle shim_killed exec_tty run_tty start_failure bad_exec stdin big_output events
  metrics oom oom_child containerd_restart exit_no_wait)
[ -z "${SHIMV2_CASES:-}" ] || read -r -a CASES <<<"$SHIMV2_CASES"
for k in "${CASES[@]}"; do run_case "$k"; done
echo "SKIP many_in_one_shim: grouping containers in one shim is a CRI sandbox feature (CRI is off here)"
exit $FAILED
