//! Errors of the v2 shim, and how they reach containerd: as ttrpc status codes
//! that containerd's errdefs understand (not found, failed precondition, ...),
//! with a message that names what failed.

use std::io;

use containerd_shim::protos::ttrpc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No container or exec process by that id.
    #[error("{0}: not found")]
    NotFound(String),
    /// The id is taken already.
    #[error("{0}: already exists")]
    Exists(String),
    /// The request makes no sense in the process's current state.
    #[error("{0}")]
    Precondition(String),
    /// Malformed request (bad stdio URI, bad options).
    #[error("{0}")]
    Invalid(String),
    /// A syscall on a path failed.
    #[error("{call} {what}: {source}")]
    Sys {
        call: &'static str,
        what: String,
        #[source]
        source: io::Error,
    },
    /// The runtime refused; the text is its own error line.
    #[error("{verb} {id}: {msg}")]
    Runtime {
        verb: &'static str,
        id: String,
        msg: String,
    },
    /// Something the shim library reported (mounts, publishing).
    #[error("{0}")]
    Shim(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn sys(call: &'static str, what: impl Into<String>, source: io::Error) -> Self {
        Error::Sys {
            call,
            what: what.into(),
            source,
        }
    }
}

impl From<containerd_shim::Error> for Error {
    fn from(e: containerd_shim::Error) -> Self {
        Error::Shim(e.to_string())
    }
}

impl From<Error> for ttrpc::Error {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::NotFound(_) => ttrpc::Code::NOT_FOUND,
            Error::Exists(_) => ttrpc::Code::ALREADY_EXISTS,
            Error::Precondition(_) => ttrpc::Code::FAILED_PRECONDITION,
            Error::Invalid(_) => ttrpc::Code::INVALID_ARGUMENT,
            Error::Sys { .. } | Error::Runtime { .. } | Error::Shim(_) => ttrpc::Code::UNKNOWN,
        };
        ttrpc::Error::RpcStatus(ttrpc::get_status(code, e.to_string()))
    }
}
