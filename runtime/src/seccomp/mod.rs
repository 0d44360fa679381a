//! `linux.seccomp`: compile the OCI filter to classic BPF and install it
//! just before execve. See docs/seccomp.md for the mapping and the notify
//! protocol.
//!
//! Interface used by the init process:
//! - [`compile`] runs in the init before any privilege is dropped and returns
//!   a ready-to-install program, so config errors surface at `create`.
//! - [`install`] loads it; called after no_new_privs and capabilities (or
//!   before the capability drop when noNewPrivileges is false, as runc does).
//!   It returns the listener fd when the profile uses SCMP_ACT_NOTIFY.
//! - [`send_notify_fd`] hands that fd and the container state to the agent
//!   at `listenerPath`, as runc and crun do. Call it from a process the
//!   filter does not apply to (the runtime's parent side, after receiving
//!   the fd from the init), or from the init with a socket connected before
//!   pivot_root.

mod arch;
mod bpf;
mod features;
mod kernel;
mod notify;
mod policy;
mod syscall_table;

#[cfg(test)]
mod bpf_eval;
#[cfg(test)]
mod kernel_tests;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::LinuxSeccomp;
use seccompiler::sock_filter;

pub use features::features;
pub use notify::{connect_listener, process_state, send_notify_fd, send_process_state};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A `linux.seccomp...` field is wrong; `field` is its JSON path.
    #[error("{field}: {msg}")]
    Config { field: String, msg: String },
    #[error("seccomp(SECCOMP_SET_MODE_FILTER): {0}")]
    Install(std::io::Error),
    /// Handing the notify fd to the agent failed.
    #[error("linux.seccomp.listenerPath {}: {op}: {source}", path.display())]
    Listener {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: nix::Error,
    },
}

/// A compiled filter, ready for [`install`].
#[derive(Debug, Clone)]
pub struct Program {
    filter: Vec<sock_filter>,
    flags: libc::c_ulong,
    notify: bool,
    unknown: Vec<String>,
}

impl Program {
    /// Syscall names no table of the filtered architectures knows; they were
    /// skipped, as runc does, and the caller logs them at debug level.
    pub fn unknown_syscalls(&self) -> &[String] {
        &self.unknown
    }

    /// Whether [`install`] will return a listener fd for the agent.
    pub fn uses_notify(&self) -> bool {
        self.notify
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.filter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.filter.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn instructions(&self) -> &[sock_filter] {
        &self.filter
    }
}

/// Validates `linux.seccomp` against this kernel and generates the BPF.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Program, SeccompError> {
    let policy = policy::translate(seccomp)?;
    let all_names: Vec<&str> = seccomp
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|s| s.names())
        .map(String::as_str)
        .collect();
    let filter = bpf::generate(&policy, &all_names);
    if filter.len() > bpf::MAX_INSNS {
        return Err(SeccompError::Config {
            field: "linux.seccomp.syscalls".into(),
            msg: format!(
                "the filter needs {} BPF instructions, the kernel takes at most {}",
                filter.len(),
                bpf::MAX_INSNS
            ),
        });
    }
    Ok(Program {
        filter,
        flags: policy.flags,
        notify: policy.notify,
        unknown: bpf::unknown_names(&policy),
    })
}

/// Loads the filter for the calling thread (the init is single-threaded).
/// Without no_new_privs this needs CAP_SYS_ADMIN. Returns the listener fd
/// when the profile uses SCMP_ACT_NOTIFY.
pub fn install(program: &Program) -> Result<Option<OwnedFd>, SeccompError> {
    kernel::load(&program.filter, program.flags).map_err(SeccompError::Install)
}
