//! The runc-compatible command line. Each subcommand is a small file that
//! turns flags into a call of the library; errors become one log line and
//! exit status 1 in main.

mod cgroup_cmd;
mod create;
mod delete;
mod events;
mod exec;
mod fast;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod resume;
mod run;
mod spec;
mod start;
mod state;
mod update;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub use fast::parse as parse_fast;

use berth::container::Global;

#[derive(Parser, Debug)]
#[command(name = "berth", version, about = "A low-level OCI container runtime", long_version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.3.0\nruntime: berth"))]
pub struct Cli {
    /// Directory for container state [default: /run/berth, or
    /// $XDG_RUNTIME_DIR/berth when not root]
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Write the runtime's log to this file
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log debug messages
    #[arg(long, global = true)]
    pub debug: bool,
    /// Manage cgroups through systemd
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility (rootless mode is detected); after
    /// `spec`, runc's `spec --rootless`
    #[arg(long, global = true, hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container (its process waits for `start`)
    Create(create::Args),
    /// Start the user process of a created container
    Start(start::Args),
    /// Create and start a container
    Run(run::Args),
    /// Print a container's state as JSON
    State(state::Args),
    /// List containers
    List(list::Args),
    /// Send a signal to a container
    Kill(kill::Args),
    /// Delete a container
    Delete(delete::Args),
    /// Change a container's resource limits
    Update(update::Args),
    /// Freeze every process of a container
    Pause(pause::Args),
    /// Thaw a paused container
    Resume(resume::Args),
    /// List a container's processes
    Ps(ps::Args),
    /// Stream a container's stats and OOM events as JSON
    Events(events::Args),
    /// Run a new process inside a container
    Exec(exec::Args),
    /// Write a default config.json
    Spec(spec::Args),
    /// Print the OCI features document (what this runtime implements)
    Features(features::Args),
}

/// runc's rule: root uses /run; a rootless user its own runtime dir.
fn default_root() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/berth");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("berth"),
        None => std::env::temp_dir().join(format!("berth-{}", nix::unistd::geteuid())),
    }
}

impl Cli {
    pub fn global(&self) -> Global {
        Global {
            root: self.root.clone().unwrap_or_else(default_root),
            systemd_cgroup: self.systemd_cgroup,
        }
    }

    /// Run the subcommand; the exit status on success.
    pub fn dispatch(self) -> anyhow::Result<i32> {
        let g = self.global();
        match self.command {
            Command::Create(a) => create::run(&g, a),
            Command::Start(a) => start::run(&g, a),
            Command::Run(a) => run::run(&g, a),
            Command::State(a) => state::run(&g, a),
            Command::List(a) => list::run(&g, a),
            Command::Kill(a) => kill::run(&g, a),
            Command::Delete(a) => delete::run(&g, a),
            Command::Update(a) => update::run(&g, a),
            Command::Pause(a) => pause::run(&g, a),
            Command::Resume(a) => resume::run(&g, a),
            Command::Ps(a) => ps::run(&g, a),
            Command::Events(a) => events::run(&g, a),
            Command::Exec(a) => exec::run(&g, a),
            Command::Spec(a) => spec::run(a, self.rootless.as_deref() == Some("true")),
            Command::Features(a) => features::run(a),
        }
    }
}

/// berth's exit status for an error, as runc's: 255 when `exec` could not
/// start its process, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    if e.is::<exec::ExecFailed>() {
        255
    } else {
        1
    }
}
