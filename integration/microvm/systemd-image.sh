#!/usr/bin/env bash
# systemd-image.sh [-f]
#
# Builds (once) the boot image for the --systemd-cgroup microVM tests (systemd-vm.sh): a minimal
# Debian, the host's release, with systemd as PID 1 and dbus, debootstrapped into a cache outside
# the repository and packed as an ext4 disk image with mkfs.ext4 -d (no loop mount needed).
# Idempotent: an existing image whose recipe stamp matches is reused; prints the image path.
#   -f   rebuild even if the cached image is current
# Env: BERTH_VM_CACHE (default /var/cache/berth-systemd-vm), DEBIAN_MIRROR (default: the first
#      deb.debian.org-style URI of the host's apt sources, else http://deb.debian.org/debian),
#      SUITE (default: VERSION_CODENAME of /etc/os-release).
# Needs: root, debootstrap, e2fsprogs (apt-get install debootstrap).
set -euo pipefail

FORCE=0
[ "${1:-}" != -f ] || FORCE=1
CACHE=${BERTH_VM_CACHE:-/var/cache/berth-systemd-vm}
# shellcheck disable=SC1091
SUITE=${SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}
MIRROR=${DEBIAN_MIRROR:-$(grep -rhoE 'https?://deb\.debian\.org/debian/?( |$)' /etc/apt/sources.list \
  /etc/apt/sources.list.d/ 2>/dev/null | head -1 | tr -d ' ' || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
# systemd-sysv: /sbin/init; dbus: the systemd manager's bus; busybox-static: the test bundles;
# libseccomp2: runc.
PACKAGES=systemd,systemd-sysv,dbus,libseccomp2,busybox-static,e2fsprogs
IMAGE=$CACHE/rootfs-$SUITE.ext4
# Changing the recipe below must change the stamp so old caches get rebuilt.
RECIPE_VERSION=1
STAMP="$RECIPE_VERSION $SUITE $PACKAGES"

[ "$(id -u)" = 0 ] || { echo "systemd-image: must run as root" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "systemd-image: apt-get install debootstrap" >&2; exit 2; }
mkdir -p "$CACHE"
current() { [ -s "$IMAGE" ] && [ "$(cat "$IMAGE.stamp" 2>/dev/null)" = "$STAMP" ]; }
if [ "$FORCE" = 0 ] && current; then echo "$IMAGE"; exit 0; fi

# One builder at a time per cache directory; a concurrent one may have just finished.
exec 9>"$CACHE/.lock"
flock 9
if [ "$FORCE" = 0 ] && current; then echo "$IMAGE"; exit 0; fi
T=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$T"' EXIT
R=$T/root
start=$(date +%s)
echo "systemd-image: debootstrap $SUITE from $MIRROR into $R" >&2
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$R" "$MIRROR" >"$T/debootstrap.log" 2>&1 ||
  { tail -30 "$T/debootstrap.log" >&2; echo "systemd-image: debootstrap failed" >&2; exit 1; }

# Trim what a throwaway test VM never needs; keeps the image (and mkfs) small.
rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/* "$R"/usr/share/doc/* \
  "$R"/usr/share/man/* "$R"/usr/share/locale/* "$R"/usr/share/info/*

echo berth-vm > "$R/etc/hostname"
printf '/dev/vda / ext4 rw,noatime 0 1\n' > "$R/etc/fstab"
# No login prompt on the serial console (its output is the test report) and no units that only
# slow a TCG boot down.
for u in serial-getty@ttyS0.service getty@tty1.service console-getty.service \
  systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
  e2scrub_reap.service fstrim.timer systemd-tmpfiles-clean.timer man-db.timer \
  systemd-journal-flush.service systemd-update-utmp.service systemd-random-seed.service; do
  ln -sf /dev/null "$R/etc/systemd/system/$u"
done
mkdir -p "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' > "$R/etc/systemd/journald.conf.d/volatile.conf"

# The test entry point: the harness attaches a second disk (/dev/vdb, ext4) holding run.sh;
# its output goes to the serial console between markers, then the VM powers off.
cat > "$R/usr/local/sbin/berth-vm-run" <<'EOS'
#!/bin/sh
mkdir -p /berth-vm
if mount /dev/vdb /berth-vm 2>/dev/null && [ -x /berth-vm/run.sh ]; then
  echo "=== systemd-vm: $(uname -r), systemd $(systemctl --version | head -1 | cut -d' ' -f2)," \
    "cgroup2: $(cat /sys/fs/cgroup/cgroup.controllers)"
  /berth-vm/run.sh
  echo "=== systemd-vm exit $?"
  sync
else
  echo "=== systemd-vm: no test disk (/dev/vdb with run.sh)"
  echo "=== systemd-vm exit 125"
fi
systemctl poweroff --no-block
EOS
chmod 0755 "$R/usr/local/sbin/berth-vm-run"
cat > "$R/etc/systemd/system/berth-vm-run.service" <<'EOS'
[Unit]
Description=berth --systemd-cgroup tests
Wants=dbus.service
After=dbus.service systemd-logind.service basic.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/berth-vm-run
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
EOS
ln -sf /etc/systemd/system/berth-vm-run.service \
  "$R/etc/systemd/system/multi-user.target.wants/berth-vm-run.service"

# Size: what the tree uses plus room for container bundles and state.
used=$(du -sm "$R" | cut -f1)
rm -f "$IMAGE.tmp"
mkfs.ext4 -q -F -L berth-vm -d "$R" "$IMAGE.tmp" "$((used + 512))M"
mv "$IMAGE.tmp" "$IMAGE"
echo "$STAMP" > "$IMAGE.stamp"
echo "systemd-image: $IMAGE (${used} MiB tree) built in $(( $(date +%s) - start )) s" >&2
echo "$IMAGE"
