#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_a: Args) -> anyhow::Result<i32> {
    let doc = berth::features::document();
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}
