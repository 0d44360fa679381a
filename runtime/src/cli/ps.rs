use std::io::Write;
use std::process::Command;

use anyhow::Context;
use berth::container::Global;
use berth::state::Status;
use clap::ValueEnum;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: Format,
    pub id: String,
    /// Options for ps(1) in table format [default: -ef]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// The container's processes: pids as JSON, or the host's `ps` lines for them.
pub fn run(g: &Global, a: Args) -> anyhow::Result<i32> {
    let any = [
        Status::Created,
        Status::Running,
        Status::Paused,
        Status::Stopped,
    ];
    let (_dir, _state, cg) = super::cgroup_cmd::open(g, &a.id, "ps", &any)?;
    let pids: Vec<i32> = cg.pids()?.iter().map(|p| p.as_raw()).collect();
    let mut out = std::io::stdout().lock();
    if let Format::Json = a.format {
        writeln!(out, "{}", serde_json::to_string(&pids)?)?;
        return Ok(0);
    }
    let ps_args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args
    };
    let ps = Command::new("ps")
        .args(&ps_args)
        .output()
        .context("run ps")?;
    if !ps.status.success() {
        anyhow::bail!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&ps.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&ps.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    writeln!(out, "{header}")?;
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(0)
}
