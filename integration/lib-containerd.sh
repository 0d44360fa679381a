# lib-containerd.sh: a private containerd for the integration scripts, sourced by engines.sh,
# shim-v2.sh, shim-v2-memory.sh and (inside the microVM, under busybox sh) shim-v2-vm.sh, so it
# is POSIX sh. Everything lives in one directory: config, root, state, sockets, log. The CRI
# plugin is off, so the host's own containerd and its images are never touched.
#
#   ctrd_config DIR [TOML]    write DIR/config.toml (sockets DIR/sock, DIR/sock.ttrpc,
#                             DIR/debug.sock), TOML appended (more tables)
#   ctrd_start DIR [ARG...]   start containerd on it (ARGs added, PATH from $CTRD_PATH when set,
#                             output appended to DIR/log) and wait until ctr gets an answer on
#                             DIR/sock; sets CTRD_PID. Fails when containerd exits or does not
#                             answer within 30 s. Again after ctrd_stop: a restart.
#   ctrd_stop [-SIGNAL]       stop it (default -TERM) and wait for it; nothing if not running.
#   busybox_rootfs DIR        a rootfs for `ctr run --rootfs`: busybox-static with every applet
#                             linked, root in /etc/passwd and /etc/group

CTRD_PID=""

ctrd_config() {
  mkdir -p "$1/root" "$1/state"
  cat > "$1/config.toml" <<EOF
version = 2
root = "$1/root"
state = "$1/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$1/sock"
[ttrpc]
  address = "$1/sock.ttrpc"
[debug]
  address = "$1/debug.sock"
EOF
  [ -z "${2:-}" ] || printf '%s\n' "$2" >> "$1/config.toml"
}

ctrd_start() {
  _ctrd_dir=$1
  shift
  PATH=${CTRD_PATH:-$PATH} containerd --config "$_ctrd_dir/config.toml" "$@" >> "$_ctrd_dir/log" 2>&1 &
  CTRD_PID=$!
  # A socket that exists but is not served yet could block ctr: bound each try when we can.
  _ctrd_to=""
  command -v timeout >/dev/null 2>&1 && _ctrd_to="timeout 5"
  _ctrd_i=0
  while [ "$_ctrd_i" -lt 150 ]; do
    $_ctrd_to ctr --address "$_ctrd_dir/sock" version >/dev/null 2>&1 && return 0
    kill -0 "$CTRD_PID" 2>/dev/null || break
    sleep 0.2
    _ctrd_i=$((_ctrd_i + 1))
  done
  return 1
}

ctrd_stop() {
  [ -n "$CTRD_PID" ] || return 0
  kill "${1:--TERM}" "$CTRD_PID" 2>/dev/null || true
  wait "$CTRD_PID" 2>/dev/null || true
  CTRD_PID=""
}

busybox_rootfs() {
  _bb=$(readlink -f "$(command -v busybox)")
  mkdir -p "$1/bin" "$1/proc" "$1/sys" "$1/dev" "$1/etc" "$1/tmp"
  cp "$_bb" "$1/bin/busybox"
  for _a in $("$_bb" --list); do [ "$_a" = busybox ] || ln -sf busybox "$1/bin/$_a"; done
  echo "root:x:0:0:root:/:/bin/sh" > "$1/etc/passwd"
  echo "root:x:0:" > "$1/etc/group"
}
