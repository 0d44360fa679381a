use berth::container::Global;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
    /// Kill the container first if it is still running
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<i32> {
    berth::container::delete::delete(g, &a.id, a.force)?;
    Ok(0)
}
