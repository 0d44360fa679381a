#!/bin/sh
# demo-bundle.sh DIR: a busybox bundle whose process prints a few lines (stdout and stderr)
# and exits 3, for `make demo`.
set -eu
dir=$1
bb=$(command -v busybox)
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/dev" "$dir/rootfs/sys" "$dir/rootfs/tmp"
cp "$bb" "$dir/rootfs/bin/busybox"
for a in $("$bb" --list); do [ "$a" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$a"; done
cat > "$dir/config.json" <<JSON
{
  "ociVersion": "1.2.0",
  "process": {
    "user": {"uid": 0, "gid": 0},
    "args": ["sh", "-c", "echo hello from \$(hostname), pid \$\$ in its own pid namespace; echo this line goes to stderr >&2; grep -E '^(Cap(Eff|Bnd)|NoNewPrivs)' /proc/self/status; exit 3"],
    "env": ["PATH=/bin"],
    "cwd": "/",
    "noNewPrivileges": true,
    "capabilities": {
      "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    }
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "berth-demo",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "cgroupsPath": "/berth-demo",
    "resources": {"pids": {"limit": 64}, "memory": {"limit": 67108864}},
    "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
    "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
  }
}
JSON
echo "bundle: $dir"
