#!/usr/bin/env bash
# systemd-vm.sh [-k] [FILTER]
#
# Runs the --systemd-cgroup tests where systemd really runs: boots the Debian image of
# systemd-image.sh (systemd 252 as PID 1, dbus, pure cgroup v2) under qemu TCG with the host's
# cloud kernel, and runs in a systemd service inside it the conformance cases named systemd_
# (tests/conformance/systemd.rs) once with RUNTIME=berth and once with RUNTIME=runc
# (`--systemd-cgroup` on both), then checks that no berth-* unit or cgroup is left.
# The root disk is the cached image opened with snapshot=on (the cache stays pristine); the
# binaries and the guest's run.sh come on a second ext4 disk made with mkfs.ext4 -d. Results
# come back on the serial console between "=== systemd-vm" markers.
# Exits non-zero if a suite failed, something leaked, or the VM did not report.
#   FILTER  test name filter instead of systemd_
#   -k      keep the work directory (printed)
# Env: RUNC (default: runc on PATH), VM_MEM (MiB, default 1024), VM_TIMEOUT (s, default 900),
#      BERTH_VM_CACHE (see systemd-image.sh), VM_RUN_SH (a script to run in the VM instead of
#      the tests; the binaries are in /berth-vm/bin, its exit status is the harness's).
set -euo pipefail

KEEP=0
if [ "${1:-}" = -k ]; then KEEP=1; shift; fi
FILTER=${1:-systemd_}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNC=${RUNC:-$(command -v runc || true)}
KERNEL=$(ls /boot/vmlinuz-*cloud-amd64 2>/dev/null | sort -V | tail -1)
[ -n "$KERNEL" ] || { echo "systemd-vm: apt-get install linux-image-cloud-amd64" >&2; exit 2; }
KVER=${KERNEL#/boot/vmlinuz-}
MODS=/lib/modules/$KVER
command -v qemu-system-x86_64 >/dev/null || { echo "systemd-vm: apt-get install qemu-system-x86" >&2; exit 2; }
command -v jq >/dev/null || { echo "systemd-vm: apt-get install jq" >&2; exit 2; }
command -v cpio >/dev/null || { echo "systemd-vm: apt-get install cpio" >&2; exit 2; }
[ -x /bin/busybox ] || { echo "systemd-vm: apt-get install busybox-static" >&2; exit 2; }

t0=$(date +%s)
IMAGE=$("$ROOT/integration/microvm/systemd-image.sh" | tail -1)
t_image=$(( $(date +%s) - t0 ))

cd "$ROOT"
cargo build -q -p berth
CONTAINER=$(cargo test -q -p berth-tests --test conformance --no-run --message-format=json 2>/dev/null |
  jq -r 'select(.reason == "compiler-artifact" and .profile.test == true) | .executable')
[ -n "$CONTAINER" ] || { echo "systemd-vm: no conformance test binary" >&2; exit 2; }
t_build=$(( $(date +%s) - t0 - t_image ))

W=$(mktemp -d /tmp/berth-systemd-vm.XXXXXX)
QEMU_PID=
cleanup() {
  if [ -n "$QEMU_PID" ]; then kill "$QEMU_PID" 2>/dev/null || true; fi
  [ "$KEEP" = 1 ] || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The initramfs only loads virtio (modules in the cloud kernel) and hands over to systemd on
# /dev/vda: the guest image carries no kernel or modules of its own.
I=$W/initramfs
mkdir -p "$I"/{bin,dev,proc,sys,newroot,mods}
cp /bin/busybox "$I/bin/busybox"
for a in sh mount umount insmod switch_root sleep echo mkdir cat; do ln -s busybox "$I/bin/$a"; done
MODLIST="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk"
for m in $MODLIST; do
  f=$(find "$MODS/kernel/drivers" -name "$m.ko*" | head -1)
  [ -n "$f" ] || { echo "systemd-vm: module $m not found under $MODS" >&2; exit 2; }
  case $f in
    *.ko) cp "$f" "$I/mods/$m.ko" ;;
    *.ko.xz) xz -dc "$f" > "$I/mods/$m.ko" ;;
    *.ko.zst) zstd -qdc "$f" > "$I/mods/$m.ko" ;;
    *.ko.gz) gzip -dc "$f" > "$I/mods/$m.ko" ;;
  esac
done
cat > "$I/init" <<EOI
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $MODLIST; do insmod /mods/\$m.ko; done
n=0; while [ ! -b /dev/vda ] && [ \$n -lt 100 ]; do sleep 0.1; n=\$((n+1)); done
mount -t ext4 -o rw,noatime /dev/vda /newroot || { echo "=== systemd-vm: cannot mount /dev/vda"; echo "=== systemd-vm exit 125"; poweroff -f; }
umount /proc /sys /dev
exec switch_root /newroot /sbin/init
EOI
chmod +x "$I/init"
(cd "$I" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "$W/initrd.gz")

# The test disk: binaries and the script the guest's berth-vm-run.service starts.
S=$W/stage
mkdir -p "$S/bin"
cp target/debug/berth "$S/bin/berth"
cp "$CONTAINER" "$S/bin/container-tests"
[ -z "$RUNC" ] || cp "$(readlink -f "$RUNC")" "$S/bin/runc"
cat > "$S/run.sh" <<EOI
#!/bin/sh
# Runs inside the VM (systemd service berth-vm-run): prints cargo's test output per suite.
D=/berth-vm
FILTER='$FILTER'
cd /tmp
status=0
suite() {  # NAME CMD...: one thread (2 emulated CPUs are slow)
  name=\$1; shift
  echo "=== suite \$name"
  "\$@" "\$FILTER" --test-threads=1 --color never 2>&1
  rc=\$?
  echo "=== suite \$name rc=\$rc"
  [ \$rc = 0 ] || status=1
}
RUNTIME=\$D/bin/berth suite systemd-berth \$D/bin/container-tests
if [ -x \$D/bin/runc ]; then
  RUNTIME=\$D/bin/runc suite systemd-runc \$D/bin/container-tests
fi
units=\$(systemctl list-units --all --plain --no-legend --type=scope,slice | grep berth || true)
if [ -n "\$units" ]; then echo "=== leaked units:"; echo "\$units"; status=1; fi
leaks=\$(find /sys/fs/cgroup -type d -name '*berth*' 2>/dev/null | grep -v berth-vm-run || true)
if [ -n "\$leaks" ]; then echo "=== leaked cgroups:"; echo "\$leaks"; status=1; fi
exit \$status
EOI
chmod +x "$S/run.sh"
# A script of one's own instead (debugging): it finds the binaries in /berth-vm/bin.
if [ -n "${VM_RUN_SH:-}" ]; then cp "$VM_RUN_SH" "$S/run.sh"; chmod +x "$S/run.sh"; fi
used=$(du -sm "$S" | cut -f1)
mkfs.ext4 -q -F -L berth-tests -d "$S" "$W/tests.ext4" "$((used + 64))M"
[ "$KEEP" = 0 ] || echo "systemd-vm: work directory $W" >&2

t1=$(date +%s)
# snapshot=on: the guest's writes to the cached image go to a temporary file and vanish.
timeout "${VM_TIMEOUT:-900}" qemu-system-x86_64 -cpu max -m "${VM_MEM:-1024}" -smp 2 -nographic \
  -no-reboot -nic none -kernel "$KERNEL" -initrd "$W/initrd.gz" \
  -drive "file=$IMAGE,format=raw,if=virtio,snapshot=on" \
  -drive "file=$W/tests.ext4,format=raw,if=virtio" \
  -append "console=ttyS0 quiet panic=-1 systemd.show_status=0 systemd.unified_cgroup_hierarchy=1 systemd.firstboot=0" \
  > "$W/console" 2>&1 &
QEMU_PID=$!
set +e
wait "$QEMU_PID"
QEMU_PID=
set -e
t_vm=$(( $(date +%s) - t1 ))

tr -d '\r' < "$W/console" | sed -n '/=== systemd-vm:/,/^=== systemd-vm exit/p' |
  sed -e 's/.*=== systemd-vm:/=== systemd-vm:/' -e '/^=== systemd-vm exit/d' > "$W/report"
cat "$W/report"
rc=$(tr -d '\r' < "$W/console" | sed -n 's/^=== systemd-vm exit \([0-9]*\).*/\1/p' | tail -1)
echo "=== summary (systemd VM; image ${t_image}s, build ${t_build}s, boot+tests ${t_vm}s)"
grep -E -A5 '^=== leaked' "$W/report" || true
grep -E '^=== suite .* rc=|^test result:' "$W/report" || true
grep -E '^test .* FAILED$' "$W/report" || true
if [ -z "$rc" ]; then
  echo "systemd-vm: no exit status (boot failed or time limit); console tail:" >&2
  tail -30 "$W/console" >&2
  exit 125
fi
echo "systemd-vm: exit $rc"
exit "$rc"
