//! `linux.seccomp`: the OCI filter compiled to classic BPF and installed just
//! before execve.
//!
//! [`compile`] runs in the init before anything is dropped, so config errors
//! surface at `create` with the field path; it translates the config into an
//! architecture-independent policy ([`policy`]), then generates one program
//! section per architecture a process here can use ([`bpf`], with the
//! syscall tables of [`arch`]). seccompiler supplies the BPF types and
//! argument widths; it has no notify action, no filter flags and a single
//! architecture per program, so generation and loading ([`kernel`]) are
//! berth's own.
//!
//! `SCMP_ACT_NOTIFY`: the init connects to `listenerPath` before pivot_root
//! ([`connect_listener`]), and after [`install`] sends the listener fd with
//! the container process state, as runc and crun do ([`send_listener_fd`]).

mod arch;
mod bpf;
mod kernel;
mod policy;
mod syscall_table;

#[cfg(test)]
mod bpf_eval;
#[cfg(test)]
mod kernel_tests;

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use oci_spec::runtime::LinuxSeccomp;
use seccompiler::sock_filter;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A `linux.seccomp...` field is wrong; `field` is its JSON path.
    #[error("{field}: {msg}")]
    Config { field: String, msg: String },
    #[error("seccomp(SECCOMP_SET_MODE_FILTER): {0}")]
    Install(std::io::Error),
    #[error("linux.seccomp.listenerPath {path}: {err}")]
    Listener { path: String, err: std::io::Error },
}

/// A compiled filter, ready for [`install`].
pub struct Program {
    filter: Vec<sock_filter>,
    flags: u64,
    notify: bool,
}

impl Program {
    /// Does installing it produce a listener fd for a seccomp agent?
    pub fn notifies(&self) -> bool {
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

/// Translate and compile `seccomp`. Syscall names no table knows are
/// skipped, as runc does, so stock profiles load on any kernel.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Program, SeccompError> {
    let policy = policy::translate(seccomp)?;
    let unknown = bpf::unknown_names(&policy);
    if !unknown.is_empty() {
        crate::log::debug(&format!(
            "seccomp: unknown syscalls skipped: {}",
            unknown.join(", ")
        ));
    }
    let filter = bpf::generate(&policy);
    if filter.len() > bpf::MAX_INSNS {
        return Err(SeccompError::Config {
            field: "linux.seccomp".into(),
            msg: format!(
                "the filter needs {} BPF instructions, the kernel takes {}",
                filter.len(),
                bpf::MAX_INSNS
            ),
        });
    }
    Ok(Program {
        filter,
        flags: policy.flags,
        notify: policy.notify,
    })
}

/// Load the filter for the calling (single-threaded) process. Returns the
/// notify listener fd when the filter has `SCMP_ACT_NOTIFY` rules.
pub fn install(program: &Program) -> Result<Option<OwnedFd>, SeccompError> {
    kernel::load(&program.filter, program.flags).map_err(SeccompError::Install)
}

/// Connect to `listenerPath` while the host's paths are still reachable
/// (before pivot_root). `None` when the filter does not notify.
pub fn connect_listener(seccomp: &LinuxSeccomp) -> Result<Option<OwnedFd>, SeccompError> {
    let notifies = seccomp
        .syscalls()
        .iter()
        .flatten()
        .any(|s| s.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActNotify);
    let Some(path) = seccomp.listener_path().as_ref().filter(|_| notifies) else {
        return Ok(None);
    };
    let sock = UnixStream::connect(path).map_err(|err| SeccompError::Listener {
        path: path.display().to_string(),
        err,
    })?;
    Ok(Some(OwnedFd::from(sock)))
}

/// Send the listener fd and the container process state (runtime-spec
/// "Seccomp" / `ContainerProcessState`) over the agent's socket.
pub fn send_listener_fd(
    sock: &OwnedFd,
    listener: &OwnedFd,
    seccomp: &LinuxSeccomp,
    pid: i32,
    state_json: &str,
) -> Result<(), SeccompError> {
    let state: serde_json::Value = serde_json::from_str(state_json).unwrap_or_default();
    let msg = serde_json::json!({
        "ociVersion": crate::state::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": seccomp.listener_metadata().clone().unwrap_or_default(),
        "state": state,
    });
    crate::sys::send_fd(sock, listener.as_raw_fd(), msg.to_string().as_bytes()).map_err(|e| {
        SeccompError::Listener {
            path: seccomp
                .listener_path()
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            err: std::io::Error::from(e),
        }
    })?;
    Ok(())
}

/// The `linux.seccomp` part of `berth features`: what this build and this
/// kernel support.
pub fn features() -> serde_json::Value {
    let actions: Vec<&str> = [
        ("SCMP_ACT_ALLOW", libc::SECCOMP_RET_ALLOW),
        ("SCMP_ACT_ERRNO", libc::SECCOMP_RET_ERRNO),
        ("SCMP_ACT_KILL", libc::SECCOMP_RET_KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", libc::SECCOMP_RET_KILL_PROCESS),
        ("SCMP_ACT_KILL_THREAD", libc::SECCOMP_RET_KILL_THREAD),
        ("SCMP_ACT_LOG", libc::SECCOMP_RET_LOG),
        ("SCMP_ACT_NOTIFY", libc::SECCOMP_RET_USER_NOTIF),
        ("SCMP_ACT_TRACE", libc::SECCOMP_RET_TRACE),
        ("SCMP_ACT_TRAP", libc::SECCOMP_RET_TRAP),
    ]
    .into_iter()
    .filter(|(_, ret)| kernel::action_available(*ret))
    .map(|(name, _)| name)
    .collect();
    let known_flags = [
        ("SECCOMP_FILTER_FLAG_TSYNC", 0u64),
        ("SECCOMP_FILTER_FLAG_LOG", libc::SECCOMP_FILTER_FLAG_LOG),
        (
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        ),
        (
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
        ),
    ];
    let supported: Vec<&str> = known_flags
        .iter()
        .filter(|(_, bit)| *bit == 0 || kernel::flag_supported(*bit))
        .map(|(n, _)| *n)
        .collect();
    let known: Vec<&str> = known_flags.iter().map(|(n, _)| *n).collect();
    let archs: Vec<&str> = arch::ALL.iter().map(|a| a.name).collect();
    serde_json::json!({
        "enabled": true,
        "actions": actions,
        "operators": [
            "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ",
            "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"
        ],
        "archs": archs,
        "knownFlags": known,
        "supportedFlags": supported,
    })
}
