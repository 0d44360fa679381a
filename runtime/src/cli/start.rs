use berth::container::Global;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<i32> {
    berth::container::start::start(g, &a.id)?;
    Ok(0)
}
