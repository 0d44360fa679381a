//! `delete`: remove a stopped (or, with `--force`, any) container: its
//! processes, cgroup and state directory, then run the poststop hooks.

use super::Global;
use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::hooks;
use crate::state::{StateDir, Status};
use oci_spec::runtime::Spec;

/// What the caller of `delete` already has about the container (`run`,
/// which created it): used only if the state still describes that same init.
pub struct Known<'a> {
    pub pid: i32,
    pub init_start_time: u64,
    pub spec: &'a Spec,
    pub cgroup: Option<&'a Cgroup>,
    /// The caller reaped the init, and it was pid 1 of a pid namespace of
    /// its own: the kernel killed and reaped every other process of that
    /// namespace before the init could be reaped, so no freezer check and
    /// no kill are needed (the cgroup's removal still checks it is empty).
    pub reaped_alone: bool,
}

pub fn delete(g: &Global, id: &str, force: bool) -> Result<()> {
    delete_known(g, id, force, None)
}

pub fn delete_known(g: &Global, id: &str, force: bool, known: Option<Known>) -> Result<()> {
    let dir = match StateDir::open(&g.root, id) {
        // runc: `delete --force` of a missing container succeeds.
        Err(Error::NotFound(_)) if force => return Ok(()),
        r => r?,
    };
    let state = match dir.load() {
        Ok(s) => s,
        // A directory without state.json is a create that died midway.
        Err(Error::NotFound(_)) if force => return dir.remove(),
        Err(e) => return Err(e),
    };
    match state.status {
        Status::Stopped => {}
        // A created container never ran user code: deleting it is safe
        // (runc allows it too).
        Status::Created | Status::Creating => {}
        _ if force => {}
        s => {
            return Err(Error::WrongState {
                id: id.into(),
                status: s.to_string(),
                op: "delete (use --force)",
            })
        }
    }
    // Another command may have deleted and re-created the id meanwhile.
    let known = known.filter(|k| k.pid == state.pid && k.init_start_time == state.init_start_time);
    let opened = match &known {
        Some(k) if k.cgroup.is_some() == state.cgroup.is_some() => None,
        _ => state.cgroup.as_ref().map(Cgroup::open).transpose()?,
    };
    let cg = opened.as_ref().or(known.as_ref().and_then(|k| k.cgroup));
    if !known.as_ref().is_some_and(|k| k.reaped_alone) {
        // A frozen (paused) process cannot act on SIGKILL until thawed.
        if let Some(cg) = cg {
            if cg.is_frozen().unwrap_or(false) {
                cg.thaw()?;
            }
        }
        super::kill::kill_all_and_wait(&state, cg)?;
    }
    if let Some(cg) = cg {
        cg.destroy()?;
    }
    let loaded;
    let spec = match &known {
        Some(k) => Some(k.spec),
        None => {
            loaded = dir.load_config_for(hooks::POSTSTOP).ok().flatten();
            loaded.as_ref()
        }
    };
    let mut stopped = state.clone();
    stopped.status = Status::Stopped;
    let json = stopped.to_oci_json();
    dir.remove()?;
    if let Some(spec) = spec {
        for e in hooks::run_best_effort(
            hooks::POSTSTOP,
            hooks::of_kind(spec.hooks().as_ref(), hooks::POSTSTOP),
            &json,
        ) {
            crate::log::warn(&e.to_string());
        }
    }
    Ok(())
}
