use berth::container::Global;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
    #[command(flatten)]
    pub opts: super::create::CreateFlags,
    /// Return once the container is started
    #[arg(short, long)]
    pub detach: bool,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<i32> {
    Ok(berth::container::run::run(
        g,
        &a.opts.to_opts(&a.id),
        a.detach,
    )?)
}
