use std::io::Write;

use berth::container::Global;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<i32> {
    let state = berth::state::peek(&g.root, &a.id)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&state.to_oci_json())?;
    out.write_all(b"\n")?;
    Ok(0)
}
