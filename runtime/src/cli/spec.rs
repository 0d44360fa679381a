use std::path::PathBuf;

use berth::spec_default;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to write config.json in
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
}

/// `rootless` is the global `--rootless` flag, which `spec` reads as runc's
/// `spec --rootless`.
pub fn run(a: Args, rootless: bool) -> anyhow::Result<i32> {
    let mut spec = spec_default::example();
    if rootless {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        spec_default::to_rootless(&mut spec, uid, gid);
    }
    spec_default::write(&a.bundle, &spec)?;
    Ok(0)
}
