//! `linux.cgroupsPath` and `linux.resources` through libcgroups.
//!
//! Interface used by the lifecycle code:
//! - [`Cgroup::create`] at `create`, before the init joins (it waits): makes the
//!   cgroup (v1, v2 or systemd, picked from what the host mounts) and applies
//!   `linux.resources`; on failure nothing is left behind. In two steps,
//!   [`Cgroup::plan`] before the init is cloned and [`Planned::make`] after.
//! - [`Cgroup::add_task`] puts the init in it before the init does anything;
//!   on v1 the init joins by itself instead, first thing ([`Cgroup::self_join`]).
//! - [`Cgroup::open`] rebuilds the handle from what `state.json` recorded.
//! - [`Cgroup::destroy`] at `delete` and when `create` fails halfway: kills
//!   what is left and removes the cgroup.
//! - `update`, `pause`/`resume`, `ps`, `events`, `kill --all`: [`Cgroup::apply`],
//!   [`Cgroup::freeze`]/[`Cgroup::thaw`]/[`Cgroup::is_frozen`], [`Cgroup::pids`],
//!   [`Cgroup::stats`]/[`Cgroup::oom_events`], [`Cgroup::kill_all`].

mod devices_v1;
mod direct;
pub mod events;
mod fields;
mod hierarchy;
mod join;
mod oom;
mod placement;
pub mod stats;
mod systemd;
#[cfg(test)]
mod tests;
pub mod update;
mod validate;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libcgroups::common::{
    AnyCgroupManager, AnyManagerError, CgroupManager, ControllerOpt, FreezerState,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};
use serde::{Deserialize, Serialize};

use hierarchy::Hierarchy;
pub use join::SelfJoin;
pub use oom::OomEvents;
use placement::Placement;
pub use stats::Stats;

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
    /// `/berth/<id>`-style path, or `slice:prefix:name` when `systemd`.
    pub path: String,
    pub systemd: bool,
}

pub struct Cgroup {
    record: CgroupRecord,
    placement: Placement,
    hierarchy: Hierarchy,
    /// libcgroups' manager parses mountinfo once per controller (~0.6 ms
    /// on a v1 host): built only when resources, freezer or stats need it.
    /// Placement, listing and removal work on `hierarchy` directly.
    manager: std::cell::OnceCell<AnyCgroupManager>,
    /// systemd makes the unit when the first pid joins; limits wait for it.
    pending: Option<LinuxResources>,
}

/// Why `--systemd-cgroup` cannot work here, if it cannot: it needs systemd
/// as PID 1 on a cgroup v2 host. Named after the field it is about, the
/// `slice:prefix:name` path (`spelled`).
fn systemd_unusable(spelled: &str, hierarchy: &Hierarchy) -> Option<CgroupError> {
    let why = if let Hierarchy::V1 { .. } = hierarchy {
        "needs a cgroup v2 host (libcgroups has no systemd driver for cgroup v1)"
    } else if !libcgroups::systemd::booted() {
        "needs systemd, which is not running here (no /run/systemd/system)"
    } else {
        return None;
    };
    Some(CgroupError::Config {
        field: placement::FIELD.into(),
        msg: format!("{spelled:?} with --systemd-cgroup {why}"),
    })
}

impl Cgroup {
    /// Make the container's cgroup with `linux.resources` in effect, before
    /// any process is in it. Nothing is left behind on error.
    pub fn create(spec: &Spec, id: &str, systemd: bool) -> Result<Cgroup, CgroupError> {
        Cgroup::plan(spec, id, systemd)?.make()
    }

    /// Everything `create` does short of touching the cgroup filesystem:
    /// where the cgroup goes, the host's layout, the limits checked against
    /// it. `create` runs this before it clones the init (a bad limit then
    /// costs no process, and the parsing is not slowed by copy-on-write
    /// faults), and [`Planned::make`] after.
    pub fn plan(spec: &Spec, id: &str, systemd: bool) -> Result<Planned, CgroupError> {
        let linux = spec.linux().as_ref();
        let path = linux.and_then(|l| l.cgroups_path().as_deref());
        let resources = linux
            .and_then(|l| l.resources().clone())
            .unwrap_or_default();
        let placement = Placement::resolve(path, id, systemd)?;
        let hierarchy = Hierarchy::detect()?;
        validate::check(&resources, &hierarchy)?;
        let cg = Cgroup::build(placement, hierarchy, systemd)?;
        Ok(Planned { cg, resources })
    }

    pub fn open(record: &CgroupRecord) -> Result<Cgroup, CgroupError> {
        let placement = Placement::resolve(
            Some(Path::new(&record.path)).filter(|p| !p.as_os_str().is_empty()),
            "",
            record.systemd,
        )?;
        Cgroup::build(placement, Hierarchy::detect()?, record.systemd)
    }

    fn build(
        placement: Placement,
        hierarchy: Hierarchy,
        systemd: bool,
    ) -> Result<Cgroup, CgroupError> {
        let spelled = placement.spelled();
        if let Some(e) = systemd
            .then(|| systemd_unusable(&spelled, &hierarchy))
            .flatten()
        {
            return Err(e);
        }
        Ok(Cgroup {
            record: CgroupRecord {
                path: spelled,
                systemd,
            },
            placement,
            hierarchy,
            manager: std::cell::OnceCell::new(),
            pending: None,
        })
    }

    /// The libcgroups manager, built on first use.
    fn manager(&self) -> Result<&AnyCgroupManager, CgroupError> {
        if let Some(m) = self.manager.get() {
            return Ok(m);
        }
        let m = self.make_manager()?;
        Ok(self.manager.get_or_init(|| m))
    }

    fn make_manager(&self) -> Result<AnyCgroupManager, CgroupError> {
        let (placement, hierarchy, systemd) =
            (&self.placement, &self.hierarchy, self.record.systemd);
        let spelled = self.record.path.clone();
        let merr = |msg: String| CgroupError::Manager {
            path: spelled.clone(),
            msg,
        };
        let manager = match (&hierarchy, systemd) {
            (Hierarchy::V1 { .. }, true) => {
                return Err(systemd_unusable(&spelled, hierarchy)
                    .unwrap_or_else(|| merr("no systemd driver for cgroup v1".into())))
            }
            (Hierarchy::V1 { .. }, false) => {
                libcgroups::v1::manager::Manager::new(&placement.path())
                    .map_err(|e| merr(e.to_string()))?
                    .any()
            }
            (Hierarchy::V2 { root, .. }, false) => {
                libcgroups::v2::manager::Manager::new(root.clone(), placement.path())
                    .map_err(|e| merr(e.to_string()))?
                    .any()
            }
            (Hierarchy::V2 { .. }, true) => {
                if let Some(e) = systemd_unusable(&spelled, hierarchy) {
                    return Err(e);
                }
                let config = libcgroups::common::CgroupConfig {
                    cgroup_path: PathBuf::from(&spelled),
                    systemd_cgroup: true,
                    container_name: match &placement {
                        Placement::Systemd { name, .. } => name.clone(),
                        Placement::Fs(_) => String::new(),
                    },
                };
                libcgroups::common::create_cgroup_manager(config)
                    .map_err(|e| merr(e.to_string()))?
            }
        };
        Ok(manager)
    }

    pub fn record(&self) -> &CgroupRecord {
        &self.record
    }

    /// The directory with `controller`'s files (`memory`, `pids`...); on v2
    /// every controller shares one directory.
    pub fn dir(&self, controller: &str) -> Option<PathBuf> {
        self.hierarchy.dir(controller, &self.placement.path())
    }

    pub fn is_v2(&self) -> bool {
        self.hierarchy.is_v2()
    }

    /// On v1 (not systemd): the `tasks` files for the init to join by
    /// itself, first thing after the clone, which is much cheaper than
    /// `add_task` (see join.rs). `None`: call `add_task` after the clone;
    /// always so when limits wait for a pid (systemd's `pending`).
    pub fn self_join(&self) -> Result<Option<SelfJoin>, CgroupError> {
        if self.record.systemd || self.is_v2() {
            return Ok(None);
        }
        SelfJoin::open(&self.hierarchy.dirs(&self.placement.path())).map(Some)
    }

    /// Move the calling process (single-threaded) into the cgroup.
    pub fn join_self(&self) -> Result<(), CgroupError> {
        match self.self_join()? {
            Some(j) => j.join(),
            None => self.add_task(nix::unistd::getpid()),
        }
    }

    pub fn add_task(&self, pid: Pid) -> Result<(), CgroupError> {
        if self.record.systemd {
            self.manager()?
                .add_task(pid)
                .map_err(|e| self.lib_err(e, "add pid"))?;
            if self.pending.is_some() {
                // The scope exists now (create, not exec).
                systemd::enable_controllers_above(&self.hierarchy, &self.placement.path());
            }
        } else {
            // One write per hierarchy, no manager needed.
            for dir in self.hierarchy.dirs(&self.placement.path()) {
                let f = dir.join("cgroup.procs");
                std::fs::write(&f, pid.to_string()).map_err(|e| CgroupError::Manager {
                    path: f.display().to_string(),
                    msg: format!("write {pid}: {e}"),
                })?;
            }
        }
        if let Some(r) = &self.pending {
            self.write(r, false)?;
        }
        Ok(())
    }

    /// Put `resources` into effect on a live cgroup (`update`). It is the
    /// complete wanted state: on v2, an absent device list means the default
    /// device rules only.
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        validate::check(resources, &self.hierarchy)?;
        self.write(resources, true)
    }

    /// `linux.resources` into a cgroup `create` has just made. Without the
    /// manager when it is not needed (see `manager`): nothing to write, or on
    /// v1 only device rules (the default spec's case, see `devices_v1`).
    fn write_new(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if *r == LinuxResources::default() {
            return Ok(());
        }
        if let (Hierarchy::V1 { .. }, Some(dir)) = (&self.hierarchy, self.dir("devices")) {
            let mut others = r.clone();
            others.set_devices(None);
            if others == LinuxResources::default() {
                return devices_v1::apply(r.devices().as_deref().unwrap_or(&[]), &dir);
            }
        }
        self.write(r, false)
    }

    fn write(&self, r: &LinuxResources, update: bool) -> Result<(), CgroupError> {
        if update {
            direct::check_before_update(r, self.dir("memory").as_deref(), self.is_v2())?;
        }
        // libcgroups' v2 io weight conversion overflows: berth writes it.
        let v2_weight = r
            .block_io()
            .as_ref()
            .and_then(|b| b.weight())
            .filter(|_| self.is_v2());
        let stripped;
        let r = match v2_weight {
            Some(_) => {
                let mut copy = r.clone();
                if let Some(b) = copy.block_io_mut() {
                    b.set_weight(None);
                }
                stripped = copy;
                &stripped
            }
            None => r,
        };
        let opt = ControllerOpt {
            resources: r,
            disable_oom_killer: r
                .memory()
                .as_ref()
                .and_then(|m| m.disable_oom_killer())
                .unwrap_or(false),
            oom_score_adj: None,
            freezer_state: None,
        };
        self.manager()?
            .apply(&opt)
            .map_err(|e| self.lib_err(e, "apply"))?;
        if let (Some(w), Some(dir)) = (v2_weight, self.dir("io")) {
            direct::apply_io_weight_v2(w, &dir)?;
        }
        if self.record.systemd {
            if let Some(dir) = self.dir("") {
                systemd::apply_devices(r, &dir)?;
                systemd::apply_hugetlb(r, &dir)?;
            }
        }
        direct::apply_rdma(r, self.dir("rdma").as_deref())
    }

    /// Every process in the cgroup (for `kill --all`, `ps`, `delete --force`).
    pub fn pids(&self) -> Result<Vec<Pid>, CgroupError> {
        let Some(dir) = self.dir(if self.is_v2() { "" } else { "pids" }) else {
            return self
                .manager()?
                .get_all_pids()
                .map_err(|e| self.lib_err(e, "list pids"));
        };
        let mut pids = Vec::new();
        match hierarchy::pids_below(&dir, &mut pids) {
            Ok(()) => Ok(pids),
            // systemd removes an emptied scope's cgroup by itself, possibly
            // while we read it.
            Err(_) if !dir.exists() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.manager()?
            .freeze(FreezerState::Frozen)
            .map_err(|e| self.lib_err(e, "freeze"))
    }

    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.manager()?
            .freeze(FreezerState::Thawed)
            .map_err(|e| self.lib_err(e, "thaw"))
    }

    /// True when `pause` froze the cgroup (state "paused").
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        let (file, frozen) = if self.is_v2() {
            ("cgroup.freeze", "1")
        } else {
            ("freezer.state", "FROZEN")
        };
        let Some(dir) = self.dir("freezer") else {
            return Ok(false);
        };
        match std::fs::read_to_string(dir.join(file)) {
            Ok(s) => Ok(s.trim() == frozen),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(CgroupError::Manager {
                path: dir.join(file).display().to_string(),
                msg: format!("read: {e}"),
            }),
        }
    }

    /// Signal every process in the cgroup. Freezing first means none can fork
    /// a child that escapes the signal.
    pub fn kill_all(&self, signal: Signal) -> Result<(), CgroupError> {
        if signal == Signal::SIGKILL && self.is_v2() {
            if let Some(f) = self.dir("").map(|d| d.join("cgroup.kill")) {
                if f.exists() {
                    return std::fs::write(&f, "1").map_err(|e| CgroupError::Manager {
                        path: f.display().to_string(),
                        msg: format!("write 1: {e}"),
                    });
                }
            }
        }
        // Nothing to signal: skip the freezer round trip (delete of a
        // stopped container lands here).
        if self.pids()?.is_empty() {
            return Ok(());
        }
        let was_frozen = self.is_frozen()?;
        let froze = !was_frozen && self.freeze().is_ok();
        let res = self.pids().map(|pids| {
            for pid in pids {
                // Gone already is fine: it is what we wanted.
                let _ = kill(pid, signal);
            }
        });
        if froze || (was_frozen && signal == Signal::SIGKILL) {
            self.thaw()?;
        }
        res
    }

    pub fn stats(&self) -> Result<Stats, CgroupError> {
        let s = self
            .manager()?
            .stats()
            .map_err(|e| self.lib_err(e, "stats"))?;
        Ok(Stats::from_lib(&s, self.is_v2()))
    }

    pub fn oom_events(&self) -> Result<OomEvents, CgroupError> {
        let Some(dir) = self.dir("memory") else {
            return Err(CgroupError::Manager {
                path: self.record.path.clone(),
                msg: "the memory controller is not available: no OOM events".into(),
            });
        };
        if self.is_v2() {
            OomEvents::v2(&dir)
        } else {
            OomEvents::v1(&dir)
        }
    }

    /// Kill what is left and remove the cgroup. Already gone is fine.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let dirs = self.hierarchy.dirs(&self.placement.path());
        // Usually empty by now (delete waited for the init): then neither
        // the freezer round trip of kill_all nor the wait is needed.
        if !self.pids()?.is_empty() {
            self.kill_all(Signal::SIGKILL)?;
            // A killed process leaves the cgroup when it exits, before it is
            // reaped.
            let deadline = Instant::now() + Duration::from_secs(5);
            while !self.pids()?.is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if self.record.systemd {
            if let Err(e) = self.manager()?.remove() {
                // systemd stops and unloads an emptied scope by itself; when
                // it did so first, stopping it fails with "not loaded".
                let gone = e.to_string().contains("not loaded") || !dirs.iter().any(|d| d.exists());
                if !gone {
                    return Err(self.lib_err(e, "remove"));
                }
            }
        }
        // An exited task may linger in the cgroup for a moment (EBUSY).
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            // berth's shared parent (`/berth`) stays, as runc and crun leave
            // the parents of their cgroups: removing and remaking it cost two
            // mkdirs, two rmdirs and a cpuset copy per hierarchy per container.
            let Some(left) = hierarchy::remove_dirs_left(&dirs) else {
                return Ok(());
            };
            if Instant::now() > deadline {
                return Err(CgroupError::Manager {
                    path: left.display().to_string(),
                    msg: "rmdir: still busy".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn lib_err(&self, e: AnyManagerError, op: &str) -> CgroupError {
        let dirs = self.hierarchy.dirs(&self.placement.path());
        let field = fields::field_for(&e, &dirs);
        match field {
            Some(field) => CgroupError::Config {
                field: field.into(),
                msg: e.to_string(),
            },
            None => CgroupError::Manager {
                path: self.record.path.clone(),
                msg: format!("{op}: {e}"),
            },
        }
    }
}

/// A cgroup placed and checked but not made yet ([`Cgroup::plan`]).
pub struct Planned {
    cg: Cgroup,
    resources: LinuxResources,
}

impl Planned {
    /// Make the cgroup and write its limits; on failure nothing is left.
    pub fn make(self) -> Result<Cgroup, CgroupError> {
        let Planned { mut cg, resources } = self;
        if cg.record.systemd {
            cg.pending = Some(resources);
            return Ok(cg);
        }
        let created = cg.hierarchy.make(&cg.placement.path())?;
        if let Err(e) = cg.write_new(&resources) {
            hierarchy::remove_dirs(&created);
            return Err(e);
        }
        Ok(cg)
    }
}
