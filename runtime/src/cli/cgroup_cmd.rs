//! What the cgroup verbs share: the container's state, its status checked,
//! and its cgroup opened.

use berth::cgroups::Cgroup;
use berth::container::Global;
use berth::error::Error;
use berth::state::{State, StateDir, Status};

/// Lock and load `id`, refuse unless its status is one of `allowed`, and
/// open its cgroup. The lock is held while the returned `StateDir` lives.
pub fn open(
    g: &Global,
    id: &str,
    op: &'static str,
    allowed: &[Status],
) -> anyhow::Result<(StateDir, State, Cgroup)> {
    let dir = StateDir::open(&g.root, id)?;
    let state = dir.load()?;
    if !allowed.contains(&state.status) {
        return Err(Error::WrongState {
            id: id.into(),
            status: state.status.to_string(),
            op,
        }
        .into());
    }
    let Some(record) = &state.cgroup else {
        return Err(Error::Other(format!("container {id} has no cgroup: cannot {op}")).into());
    };
    let cg = Cgroup::open(record)?;
    Ok((dir, state, cg))
}
