//! The `linux.seccomp` part of `berth features` (runtime-spec features.md).

use serde_json::{json, Value};

use super::arch;
use super::kernel;

pub(crate) const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

pub(crate) const OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// Flags berth understands, with the kernel bit to probe (none for TSYNC,
/// which berth accepts and has no use for in a single-threaded init).
const FLAGS: &[(&str, Option<libc::c_ulong>)] = &[
    (
        "SECCOMP_FILTER_FLAG_LOG",
        Some(libc::SECCOMP_FILTER_FLAG_LOG),
    ),
    (
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        Some(libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW),
    ),
    ("SECCOMP_FILTER_FLAG_TSYNC", None),
    (
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        Some(libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV),
    ),
];

/// `{"enabled", "actions", "operators", "archs", "knownFlags",
/// "supportedFlags"}`; supportedFlags are probed on the running kernel.
pub fn features() -> Value {
    let archs: Vec<&str> = arch::ALL.iter().map(|a| a.name).collect();
    let known: Vec<&str> = FLAGS.iter().map(|(n, _)| *n).collect();
    let supported: Vec<&str> = FLAGS
        .iter()
        .filter(|(_, bit)| bit.is_none_or(kernel::flag_supported))
        .map(|(n, _)| *n)
        .collect();
    json!({
        "enabled": true,
        "actions": ACTIONS,
        "operators": OPERATORS,
        "archs": archs,
        "knownFlags": known,
        "supportedFlags": supported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_what_compile_accepts() {
        let f = features();
        assert_eq!(f["actions"].as_array().map(Vec::len), Some(9));
        assert_eq!(f["operators"].as_array().map(Vec::len), Some(7));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            f["archs"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        // Every kernel berth targets (>= 5.19 for the last) has these.
        assert_eq!(f["supportedFlags"], f["knownFlags"]);
    }
}
