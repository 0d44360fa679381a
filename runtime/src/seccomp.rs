//! `linux.seccomp`: compile the OCI filter to BPF with seccompiler and
//! install it just before execve.
//!
//! Interface used by the init process (do not change without updating
//! `process`):
//! - [`compile`] runs in the init before any privilege is dropped and returns
//!   a ready-to-install program, so config errors surface at `create`.
//! - [`install`] loads it; called after no_new_privs and capabilities (or
//!   before the capability drop when noNewPrivileges is false, as runc does).

use oci_spec::runtime::LinuxSeccomp;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A `linux.seccomp...` field is wrong; `field` is its JSON path.
    #[error("{field}: {msg}")]
    Config { field: String, msg: String },
    #[error("seccomp(SECCOMP_SET_MODE_FILTER): {0}")]
    Install(std::io::Error),
}

/// A compiled filter, ready for [`install`].
pub struct Program {
    _private: (),
}

pub fn compile(_seccomp: &LinuxSeccomp) -> Result<Program, SeccompError> {
    Err(SeccompError::Config {
        field: "linux.seccomp".into(),
        msg: "seccomp is not implemented yet".into(),
    })
}

pub fn install(_program: &Program) -> Result<(), SeccompError> {
    Ok(())
}
