use berth::container::Global;
use berth::state::Status;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

/// Freeze every process of a running container (status becomes `paused`).
pub fn run(g: &Global, a: Args) -> anyhow::Result<i32> {
    let (_dir, _state, cg) = super::cgroup_cmd::open(g, &a.id, "pause", &[Status::Running])?;
    cg.freeze()?;
    Ok(0)
}
