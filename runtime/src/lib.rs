//! berth: a low-level OCI container runtime.
//!
//! The create path reads top to bottom as the runtime spec's lifecycle:
//! [`container::create`] validates the bundle ([`config`]), reserves the
//! state directory ([`state`]), places the container in a cgroup
//! ([`cgroups`]), clones the init process into its namespaces
//! ([`process`], [`namespaces`]) which prepares the root filesystem
//! ([`rootfs`]), runs the hooks ([`hooks`]) and waits on the exec fifo until
//! `start`, then drops privileges ([`capabilities`], [`seccomp`]) and execs.

pub mod cgroups;
pub mod error;
pub mod seccomp;

pub use error::{Error, Result};
