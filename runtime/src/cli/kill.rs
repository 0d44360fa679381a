use berth::container::kill::{kill, parse_signal};
use berth::container::Global;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
    /// Signal name (KILL, SIGKILL) or number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
    /// Signal every process in the container
    #[arg(short, long)]
    pub all: bool,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<i32> {
    kill(g, &a.id, parse_signal(&a.signal)?, a.all)?;
    Ok(0)
}
