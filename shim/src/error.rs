//! Errors of the shim. Every variant names what failed (syscall and path, option, runtime verb).

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command line; the message names the option.
    #[error("{0}")]
    Usage(String),
    /// A syscall on a path (or on a described object) failed.
    #[error("{call} {what}: {source}")]
    Sys {
        call: &'static str,
        what: String,
        #[source]
        source: io::Error,
    },
    /// The runtime refused; the text is its stderr, verbatim.
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    pub fn sys(call: &'static str, what: impl Into<String>, source: io::Error) -> Self {
        Error::Sys {
            call,
            what: what.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand: attach the syscall name and the object to an io::Result.
pub trait Ctx<T> {
    fn ctx(self, call: &'static str, what: impl std::fmt::Display) -> Result<T>;
}

impl<T> Ctx<T> for io::Result<T> {
    fn ctx(self, call: &'static str, what: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| Error::sys(call, what.to_string(), e))
    }
}
