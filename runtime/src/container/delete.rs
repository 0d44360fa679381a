//! `delete`: remove a stopped (or, with `--force`, any) container: its
//! processes, cgroup and state directory, then run the poststop hooks.

use super::Global;
use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::hooks;
use crate::state::{StateDir, Status};

pub fn delete(g: &Global, id: &str, force: bool) -> Result<()> {
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
    let cg = state.cgroup.as_ref().map(Cgroup::open).transpose()?;
    // A frozen (paused) process cannot act on SIGKILL until thawed.
    if let Some(cg) = &cg {
        if cg.is_frozen().unwrap_or(false) {
            cg.thaw()?;
        }
    }
    super::kill::kill_all_and_wait(&state, cg.as_ref())?;
    if let Some(cg) = cg {
        cg.destroy()?;
    }
    let spec = dir.load_config().ok();
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
