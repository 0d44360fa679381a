use std::path::PathBuf;

use berth::container::exec::{exec, load_process, process_from_config, ExecOpts, Overrides};
use berth::container::Global;
use berth::state::StateDir;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSON file with the complete process (replaces config.json's)
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Unix socket that receives the pty master
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Add an environment variable (KEY=VALUE)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Run as uid[:gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Add a supplementary group
    #[arg(short = 'g', long, value_delimiter = ',')]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective and permitted sets
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long)]
    pub no_new_privs: bool,
    /// AppArmor profile for the process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process
    #[arg(long)]
    pub process_label: Option<String>,
    /// Return once the process has started
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid to this file
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Pass this many fds beyond stdio (3, 4, ...) to the process
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Allow exec in a paused container
    #[arg(long)]
    pub ignore_paused: bool,
    /// Container id
    pub id: String,
    /// Command and its arguments (unless --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Any failure to start the process: berth exits 255 like runc, so the
/// caller can tell it from the process's own exit code.
#[derive(Debug)]
pub struct ExecFailed(pub berth::Error);

impl std::fmt::Display for ExecFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exec failed: {}", self.0)
    }
}

impl std::error::Error for ExecFailed {}

pub fn run(g: &Global, a: Args) -> anyhow::Result<i32> {
    let failed = |e| anyhow::Error::new(ExecFailed(e));
    let process = match &a.process {
        Some(path) => load_process(path).map_err(failed)?,
        None => {
            // Reads the config under the lock: a concurrent delete cannot
            // remove it halfway.
            let spec = StateDir::open(&g.root, &a.id)
                .and_then(|d| d.load_config())
                .map_err(failed)?;
            let o = Overrides {
                args: a.args,
                cwd: a.cwd,
                env: a.env,
                tty: a.tty,
                user: a.user,
                additional_gids: a.additional_gids,
                caps: a.cap,
                no_new_privs: a.no_new_privs,
                apparmor: a.apparmor,
                process_label: a.process_label,
            };
            process_from_config(&spec, &o).map_err(failed)?
        }
    };
    let opts = ExecOpts {
        id: a.id,
        process,
        console_socket: a.console_socket,
        detach: a.detach,
        pid_file: a.pid_file,
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
    };
    exec(g, &opts).map_err(failed)
}
