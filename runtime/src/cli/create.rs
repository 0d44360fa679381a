use std::path::PathBuf;

use berth::container::create::{create, CreateOpts};
use berth::container::Global;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id
    pub id: String,
    #[command(flatten)]
    pub opts: CreateFlags,
}

/// Flags shared by `create` and `run`.
#[derive(clap::Args, Debug)]
pub struct CreateFlags {
    /// Bundle directory (holds config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's pid to this file
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is set
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Pass this many fds beyond stdio (3, 4, ...) to the container
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Use MS_MOVE and chroot instead of pivot_root
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not give the container its own session keyring
    #[arg(long)]
    pub no_new_keyring: bool,
}

impl CreateFlags {
    pub fn to_opts(&self, id: &str) -> CreateOpts {
        CreateOpts {
            id: id.to_string(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            preserve_fds: self.preserve_fds,
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            hold_fifo: false,
        }
    }
}

pub fn run(g: &Global, a: Args) -> anyhow::Result<i32> {
    create(g, &a.opts.to_opts(&a.id))?;
    Ok(0)
}
