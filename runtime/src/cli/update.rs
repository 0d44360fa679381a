use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use berth::cgroups::update::{parse_resources, resources_for_update, UpdateFlags};
use berth::container::Global;
use berth::state::Status;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
    /// LinuxResources JSON to apply ("-" reads stdin)
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes (k, m, g suffixes; -1 unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit (-1 unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long)]
    pub cpu_shares: Option<u64>,
    /// CPU CFS quota in µs per period (-1 unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in µs
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPUs to run on (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to allocate from (0-3, 0,1)
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (-1 unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10-1000)
    #[arg(long)]
    pub blkio_weight: Option<u16>,
}

/// Change the resource limits of a live container.
pub fn run(g: &Global, a: Args) -> anyhow::Result<i32> {
    let live = [Status::Created, Status::Running, Status::Paused];
    let (dir, _state, cg) = super::cgroup_cmd::open(g, &a.id, "update", &live)?;
    let file = match &a.resources {
        None => None,
        Some(p) => {
            let mut text = String::new();
            if p.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("--resources: read stdin")?;
            } else {
                text = std::fs::read_to_string(p)
                    .with_context(|| format!("--resources: read {}", p.display()))?;
            }
            Some(parse_resources(&text)?)
        }
    };
    let flags = UpdateFlags {
        memory: a.memory,
        memory_swap: a.memory_swap,
        memory_reservation: a.memory_reservation,
        cpu_shares: a.cpu_shares,
        cpu_quota: a.cpu_quota,
        cpu_period: a.cpu_period,
        cpuset_cpus: a.cpuset_cpus,
        cpuset_mems: a.cpuset_mems,
        pids_limit: a.pids_limit,
        blkio_weight: a.blkio_weight,
    };
    let spec = dir.load_config()?;
    let configured = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    cg.apply(&resources_for_update(file.as_ref(), &flags, configured)?)?;
    Ok(0)
}
