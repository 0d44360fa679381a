#!/usr/bin/env bash
# run-tests.sh [-k] [FILTER]
#
# Runs berth's cgroup tests on a real cgroup v2 hierarchy: builds the tests on the host, boots the
# microVM (../shared/microvm/run-in-vm.sh beside the repository: Debian cloud kernel, qemu TCG, cgroup2 with every
# controller) and runs inside it
#   1. the `cgroups::` unit tests of the berth library (real cgroups, no container), and
#   2. the cgroup cases of the conformance suite (tests/conformance/cgroups.rs, names starting
#      with cgroup_) once with RUNTIME=berth and once with RUNTIME=runc,
#   3. integration/microvm/shim-v2-vm.sh: containerd-shim-berth-v2 under a private containerd
#      (when containerd is installed): run, OOM notification, metrics, nothing left.
# Prints each test binary's results and a summary; exits non-zero if anything failed.
#   FILTER  test name filter instead of the defaults (cgroups:: and cgroup_)
#   -k      keep the staging directory (printed) for a manual run-in-vm.sh
# Env: RUN_IN_VM (default ../shared/microvm/run-in-vm.sh beside the repository), RUNC (default: runc on PATH),
#      VM_MEM (MiB, default 1024), VM_TIMEOUT (s, default 900).
set -euo pipefail

KEEP=0
if [ "${1:-}" = -k ]; then KEEP=1; shift; fi
FILTER=${1:-}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUN_IN_VM=${RUN_IN_VM:-$ROOT/../shared/microvm/run-in-vm.sh}
RUNC=${RUNC:-$(command -v runc || true)}
[ -x "$RUN_IN_VM" ] || { echo "run-tests: $RUN_IN_VM not found" >&2; exit 2; }
command -v jq >/dev/null || { echo "run-tests: jq not found (apt-get install jq)" >&2; exit 2; }
ls /boot/vmlinuz-*cloud-amd64 >/dev/null 2>&1 ||
  { echo "run-tests: apt-get install linux-image-cloud-amd64" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null ||
  { echo "run-tests: apt-get install qemu-system-x86" >&2; exit 2; }

# Build on the host: the VM has no toolchain.
cd "$ROOT"
cargo build -q -p berth
exes() {  # test executables of `cargo test ARGS --no-run`
  cargo test -q "$@" --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .profile.test == true) | .executable'
}
LIB=$(exes -p berth --lib)
CONTAINER=$(exes -p berth-tests --test conformance)

# Stage everything under one directory copied into the VM at the same path.
S=$(mktemp -d /tmp/berth-microvm.XXXXXX)
[ "$KEEP" = 1 ] || trap 'rm -rf "$S"' EXIT
mkdir -p "$S/bin"
cp "$LIB" "$S/bin/lib-tests"
cp target/debug/berth "$S/bin/berth"
# containerd-shim-berth-v2 on cgroup v2, when containerd is installed (3.).
CTRD_ARGS=()
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
  cargo build -q -p berth-shim --bin containerd-shim-berth-v2
  cp target/debug/containerd-shim-berth-v2 "$S/bin/"
  cp integration/microvm/shim-v2-vm.sh integration/lib-containerd.sh "$S/"
  CTRD_ARGS=(-a "$(command -v containerd)" -a "$(command -v ctr)")
fi
[ -z "$CONTAINER" ] || cp "$CONTAINER" "$S/bin/container-tests"
[ -z "$RUNC" ] || cp "$(readlink -f "$RUNC")" "$S/bin/runc"

cat > "$S/vm-main.sh" <<EOI
#!/bin/sh
# Runs inside the VM. Each suite prints cargo's test output; the summary is parsed on the host.
S=$S
FILTER='$FILTER'
cd /tmp
status=0
suite() {  # NAME DEFAULT_FILTER CMD...: run a test binary, one thread (2 emulated CPUs are slow)
  name=\$1 filter=\${FILTER:-\$2}; shift 2
  echo "=== suite \$name"
  "\$@" "\$filter" --test-threads=1 --color never 2>&1
  rc=\$?
  echo "=== suite \$name rc=\$rc"
  [ \$rc = 0 ] || status=1
}
suite lib-cgroups cgroups:: "\$S/bin/lib-tests"
export RUNTIME=\$S/bin/berth
suite conformance-berth cgroup_ "\$S/bin/container-tests"
if [ -x "\$S/bin/runc" ]; then
  export RUNTIME=\$S/bin/runc
  suite conformance-runc cgroup_ "\$S/bin/container-tests"
fi
if [ -x "\$S/shim-v2-vm.sh" ]; then
  echo "=== suite shim-v2"
  "\$S/shim-v2-vm.sh" "\$S/bin"
  rc=\$?
  echo "=== suite shim-v2 rc=\$rc"
  [ \$rc = 0 ] || status=1
fi
# /berth itself is the shared parent of default paths and stays, as runc's parents do.
leaks=\$(find /sys/fs/cgroup -type d -path '*berth*' ! -path /sys/fs/cgroup/berth 2>/dev/null)
if [ -n "\$leaks" ]; then echo "=== leaked cgroups:"; echo "\$leaks"; status=1; fi
exit \$status
EOI
chmod +x "$S/vm-main.sh"
[ "$KEEP" = 0 ] || echo "run-tests: staged in $S" >&2

set +e
OUT=$("$RUN_IN_VM" -m "${VM_MEM:-1024}" -t "${VM_TIMEOUT:-900}" -a "$S" "${CTRD_ARGS[@]}" -- "$S/vm-main.sh" 2>&1)
rc=$?
set -e
printf '%s\n' "$OUT"
echo "=== summary (cgroup v2 microVM)"
printf '%s\n' "$OUT" | grep -E -A3 '^=== leaked' || true
printf '%s\n' "$OUT" | grep -E '^=== suite .* rc=|^test result:' || true
printf '%s\n' "$OUT" | grep -E '^test .* FAILED$|^FAIL shim-v2' || true
echo "run-tests: exit $rc"
exit "$rc"
