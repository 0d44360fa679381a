use std::io::Write;

use berth::container::Global;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only the ids
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<i32> {
    let all = berth::container::list::list(g)?;
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for s in &all {
            writeln!(out, "{}", s.id)?;
        }
    } else if a.format == "json" {
        let v: Vec<serde_json::Value> = all
            .iter()
            .map(|s| serde_json::from_slice(&s.to_oci_json()).unwrap_or_default())
            .collect();
        writeln!(out, "{}", serde_json::to_string(&v)?)?;
    } else {
        writeln!(
            out,
            "{:<20} {:<8} {:<10} {:<40} {:<31} OWNER",
            "ID", "PID", "STATUS", "BUNDLE", "CREATED"
        )?;
        for s in &all {
            let pid = if s.status == berth::state::Status::Stopped {
                0
            } else {
                s.pid
            };
            writeln!(
                out,
                "{:<20} {:<8} {:<10} {:<40} {:<31} {}",
                s.id,
                pid,
                s.status,
                s.bundle.display(),
                s.created,
                s.owner
            )?;
        }
    }
    Ok(0)
}
