use berth::container::Global;
use berth::state::Status;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

/// Thaw a paused container.
pub fn run(g: &Global, a: Args) -> anyhow::Result<i32> {
    let (_dir, _state, cg) = super::cgroup_cmd::open(g, &a.id, "resume", &[Status::Paused])?;
    cg.thaw()?;
    Ok(0)
}
