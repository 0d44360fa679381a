//! Parsing what a container printed about itself (`/proc/self/status`, `mountinfo`, ...).

use std::collections::BTreeMap;

/// `Key:\tvalue` lines of /proc/<pid>/status, keyed by name.
pub fn status_fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone)]
pub struct MountInfo {
    pub mount_point: String,
    pub root: String,
    /// Per-mount options (ro, nosuid, nodev, noexec, relatime...).
    pub options: Vec<String>,
    /// Optional fields: shared:N, master:N, propagate_from:N, unbindable.
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    /// Superblock options (size=, mode=...).
    pub super_options: Vec<String>,
}

impl MountInfo {
    pub fn has(&self, opt: &str) -> bool {
        self.options.iter().any(|o| o == opt) || self.super_options.iter().any(|o| o == opt)
    }

    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("shared:"))
    }

    pub fn is_slave(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("master:"))
    }
}

pub fn mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if f.len() < 6 || r.len() < 3 {
                return None;
            }
            Some(MountInfo {
                root: unescape(f[3]),
                mount_point: unescape(f[4]),
                options: f[5].split(',').map(str::to_owned).collect(),
                optional: f[6..].iter().map(|s| s.to_string()).collect(),
                fstype: r[0].to_owned(),
                source: unescape(r[1]),
                super_options: r[2].split(',').map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// The last mount at `point` (the one visible).
pub fn mount_at<'a>(mounts: &'a [MountInfo], point: &str) -> Option<&'a MountInfo> {
    mounts.iter().rev().find(|m| m.mount_point == point)
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(Ok(v)) = s.get(i + 1..i + 4).map(|o| u8::from_str_radix(o, 8)) {
                out.push(v as char);
                i += 4;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Capability bit numbers by name (CAP_ prefix optional), for the capabilities tests.
pub fn cap_bit(name: &str) -> Option<u32> {
    const NAMES: [&str; 41] = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    let n = name.strip_prefix("CAP_").unwrap_or(name);
    NAMES.iter().position(|c| *c == n).map(|p| p as u32)
}

/// The hex mask /proc/self/status shows for a set of capability names.
pub fn cap_mask(names: &[&str]) -> u64 {
    names
        .iter()
        .filter_map(|n| cap_bit(n))
        .fold(0, |m, b| m | (1u64 << b))
}

pub fn parse_mask(hex: &str) -> Option<u64> {
    u64::from_str_radix(hex.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_fields() {
        let text = "36 35 0:31 / /mnt/my\\040dir rw,nosuid,relatime shared:7 master:1 - tmpfs tmpfs rw,size=1024k,mode=710\n";
        let m = mountinfo(text);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].mount_point, "/mnt/my dir");
        assert!(m[0].is_shared() && m[0].is_slave());
        assert!(m[0].has("nosuid") && m[0].has("size=1024k") && !m[0].has("ro"));
        assert_eq!(m[0].fstype, "tmpfs");
    }

    #[test]
    fn capability_masks() {
        assert_eq!(cap_mask(&["CAP_CHOWN", "KILL"]), 0x21);
        assert_eq!(cap_bit("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(cap_bit("CAP_NOPE"), None);
        assert_eq!(parse_mask("00000000000004a1"), Some(0x4a1));
    }
}
