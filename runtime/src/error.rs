use std::path::PathBuf;

/// Every error berth's library returns. Each variant carries what a user
/// needs to act: the config field, or the syscall and the path it failed on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config.json field is malformed or semantically wrong; `field` is a
    /// JSON path such as `mounts[2].destination`.
    #[error("{field}: {msg}")]
    Config { field: String, msg: String },

    /// A syscall failed on a path (or on a named object when there is none).
    #[error("{syscall} {path}: {source}")]
    Sys {
        syscall: &'static str,
        path: String,
        #[source]
        source: nix::Error,
    },

    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("container {0} does not exist")]
    NotFound(String),

    #[error("container {0} already exists")]
    Exists(String),

    /// The container is not in a status that allows the operation.
    #[error("container {id} is {status}: cannot {op}")]
    WrongState {
        id: String,
        status: String,
        op: &'static str,
    },

    /// The container has stopped. Worded as runc words it: containerd and
    /// podman match "container not running" to treat a kill as done.
    #[error("cannot {op} {id}: container not running")]
    NotRunning { id: String, op: &'static str },

    #[error("hooks.{kind}[{index}] {path}: {msg}")]
    Hook {
        kind: &'static str,
        index: usize,
        path: String,
        msg: String,
    },

    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),

    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),

    /// The container's init process reported a failure before exec.
    #[error("{0}")]
    Init(String),

    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn config(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            msg: msg.into(),
        }
    }

    pub fn sys(syscall: &'static str, path: impl std::fmt::Display, source: nix::Error) -> Self {
        Error::Sys {
            syscall,
            path: path.to_string(),
            source,
        }
    }

    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Attach a syscall name and a path to a `nix` result.
pub trait SysContext<T> {
    fn sys(self, syscall: &'static str, path: impl std::fmt::Display) -> Result<T>;
}

impl<T> SysContext<T> for nix::Result<T> {
    fn sys(self, syscall: &'static str, path: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| Error::sys(syscall, path, e))
    }
}

/// Attach an operation name and a path to a `std::io` result.
pub trait IoContext<T> {
    fn io(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}
