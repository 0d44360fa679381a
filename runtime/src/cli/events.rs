use std::time::Duration;

use berth::cgroups::events::{print_stats, watch};
use berth::container::Global;
use berth::state::Status;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
    /// Print one stats event and exit
    #[arg(long)]
    pub stats: bool,
    /// Time between stats events (500ms, 5s, 1m)
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
}

/// runc's event stream: stats every interval, OOM kills as they happen,
/// until the container stops.
pub fn run(g: &Global, a: Args) -> anyhow::Result<i32> {
    let live = [Status::Created, Status::Running, Status::Paused];
    let (dir, _state, cg) = super::cgroup_cmd::open(g, &a.id, "events", &live)?;
    // Other commands (kill, delete) must not wait on our lock while we watch.
    drop(dir);
    let mut out = std::io::stdout().lock();
    if a.stats {
        print_stats(&cg, &a.id, &mut out)?;
        return Ok(0);
    }
    let root = g.root.clone();
    let id = a.id.clone();
    watch(&cg, &a.id, a.interval, &mut out, || {
        berth::state::peek(&root, &id).is_ok_and(|s| s.status != Status::Stopped)
    })?;
    Ok(0)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 5s"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unit must be ms, s, m or h")),
    };
    if secs <= 0.0 || !secs.is_finite() {
        return Err(format!("{s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}
