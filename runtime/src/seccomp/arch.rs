//! The audit architectures a process on this host can issue syscalls under,
//! with their syscall tables.
//!
//! A filter only ever sees the host's native architecture and its compat
//! modes (i386 and x32 on x86_64, arm on aarch64), so `SCMP_ARCH_*` entries
//! of other families are accepted and ignored: no process here can present
//! them.

use oci_spec::runtime::Arch;
use seccompiler::SeccompCmpArgLen;

use super::syscall_table as table;

/// `nr` of x32 syscalls has this bit set; they arrive under AUDIT_ARCH_X86_64.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ArchSpec {
    /// The `SCMP_ARCH_*` name, for `features` and messages.
    pub name: &'static str,
    /// `seccomp_data.arch` for this mode (x32 shares x86_64's).
    pub audit: u32,
    /// Syscall name -> number, sorted by name.
    pub table: &'static [(&'static str, u32)],
    /// How many bits of an argument the kernel passes for this mode.
    pub arg_len: SeccompCmpArgLen,
}

impl ArchSpec {
    pub fn syscall_nr(&self, name: &str) -> Option<u32> {
        self.table
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| self.table[i].1)
    }

    /// x32 is a mode of AUDIT_ARCH_X86_64, told apart by the syscall number.
    pub fn is_x32(&self) -> bool {
        self.name == "SCMP_ARCH_X32"
    }
}

#[cfg(target_arch = "x86_64")]
mod host {
    use super::*;

    pub static NATIVE: ArchSpec = ArchSpec {
        name: "SCMP_ARCH_X86_64",
        audit: 0xc000_003e,
        table: table::X86_64,
        arg_len: SeccompCmpArgLen::Qword,
    };
    pub static X86: ArchSpec = ArchSpec {
        name: "SCMP_ARCH_X86",
        audit: 0x4000_0003,
        table: table::X86,
        arg_len: SeccompCmpArgLen::Dword,
    };
    pub static X32: ArchSpec = ArchSpec {
        name: "SCMP_ARCH_X32",
        audit: 0xc000_003e,
        table: table::X32,
        arg_len: SeccompCmpArgLen::Dword,
    };
    pub static ALL: [&ArchSpec; 3] = [&NATIVE, &X86, &X32];

    pub fn lookup(arch: Arch) -> Option<&'static ArchSpec> {
        match arch {
            Arch::ScmpArchNative | Arch::ScmpArchX86_64 => Some(&NATIVE),
            Arch::ScmpArchX86 => Some(&X86),
            Arch::ScmpArchX32 => Some(&X32),
            _ => None,
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod host {
    use super::*;

    pub static NATIVE: ArchSpec = ArchSpec {
        name: "SCMP_ARCH_AARCH64",
        audit: 0xc000_00b7,
        table: table::AARCH64,
        arg_len: SeccompCmpArgLen::Qword,
    };
    pub static ARM: ArchSpec = ArchSpec {
        name: "SCMP_ARCH_ARM",
        audit: 0x4000_0028,
        table: table::ARM,
        arg_len: SeccompCmpArgLen::Dword,
    };
    pub static ALL: [&ArchSpec; 2] = [&NATIVE, &ARM];

    pub fn lookup(arch: Arch) -> Option<&'static ArchSpec> {
        match arch {
            Arch::ScmpArchNative | Arch::ScmpArchAarch64 => Some(&NATIVE),
            Arch::ScmpArchArm => Some(&ARM),
            _ => None,
        }
    }
}

pub(crate) use host::{lookup, ALL, NATIVE};

/// The modes to filter, native first, without duplicates. The native
/// architecture is always included, as runc does: profiles such as Docker's
/// on ppc64le omit it.
pub(crate) fn resolve(archs: Option<&Vec<Arch>>) -> Vec<&'static ArchSpec> {
    let mut out: Vec<&'static ArchSpec> = vec![&NATIVE];
    for spec in archs.into_iter().flatten().filter_map(|a| lookup(*a)) {
        if !out.contains(&spec) {
            out.push(spec);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_for_binary_search() {
        for spec in ALL {
            assert!(
                spec.table.windows(2).all(|w| w[0].0 < w[1].0),
                "{} table is not sorted",
                spec.name
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_family_numbers() {
        assert_eq!(NATIVE.syscall_nr("read"), Some(0));
        assert_eq!(NATIVE.syscall_nr("mkdirat"), Some(libc::SYS_mkdirat as u32));
        assert_eq!(NATIVE.syscall_nr("_llseek"), None);
        assert_eq!(host::X86.syscall_nr("_llseek"), Some(140));
        assert_eq!(host::X32.syscall_nr("read"), Some(X32_SYSCALL_BIT));
        assert_eq!(
            host::X32.syscall_nr("rt_sigaction"),
            Some(X32_SYSCALL_BIT + 512)
        );
        assert_eq!(NATIVE.syscall_nr("no_such_syscall"), None);
    }

    #[test]
    fn resolve_puts_native_first_and_ignores_foreign_arches() {
        let got = resolve(Some(&vec![Arch::ScmpArchS390x, Arch::ScmpArchNative]));
        assert_eq!(got, vec![&NATIVE]);
        assert_eq!(resolve(None), vec![&NATIVE]);
    }
}
