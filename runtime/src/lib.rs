//! berth: a low-level OCI container runtime.
//!
//! The create path reads top to bottom as the runtime spec's lifecycle:
//! [`container::create`] validates the bundle ([`config`], [`validate`]),
//! reserves the state directory ([`state`]), places the container in a
//! cgroup ([`cgroups`]), clones the init into its namespaces ([`process`],
//! [`namespaces`], on another CPU meanwhile: [`affinity`]); the init
//! ([`init`]) prepares the root filesystem ([`rootfs`]) while the runtime
//! runs the hooks ([`hooks`]), then waits on the exec fifo until `start`,
//! drops privileges ([`identity`], [`capabilities`], [`seccomp`]) and execs.
//!
//! Against known escapes (docs/security.md): the runtime is non-dumpable
//! before anything enters a container ([`selfexe`]); every write to /proc
//! goes through a private procfs handle ([`procfs`]); sysctls are limited
//! to the container's namespaces ([`sysctl`]); LSM labels are applied or
//! refused, never skipped ([`lsm`]).

pub mod affinity;
pub mod capabilities;
pub mod cgroups;
pub mod config;
pub mod container;
pub mod error;
pub mod features;
pub mod finalize;
pub mod hooks;
pub mod identity;
pub mod init;
pub mod log;
pub mod lsm;
pub mod namespaces;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod seccomp;
pub mod selfexe;
pub mod spec_default;
pub mod state;
pub mod sync;
pub mod sys;
pub mod sysctl;
pub mod tty;
pub mod validate;

pub use error::{Error, Result};
