//! Mount options of config.json (`mounts[].options`) as mount(2) flags,
//! propagation changes and filesystem data, the way runc reads them.

use nix::mount::MsFlags;

/// What a list of options asks for.
#[derive(Debug, Clone)]
pub struct Options {
    pub flags: MsFlags,
    /// Flags the options explicitly clear (`rw`, `suid`, ...).
    pub cleared: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive: bool,
}

/// Known option → (set?, flag). `None` means the option is filesystem data.
pub fn is_known(opt: &str) -> Option<(bool, MsFlags)> {
    let f = match opt {
        "ro" => (true, MsFlags::MS_RDONLY),
        "rw" => (false, MsFlags::MS_RDONLY),
        "nosuid" => (true, MsFlags::MS_NOSUID),
        "suid" => (false, MsFlags::MS_NOSUID),
        "nodev" => (true, MsFlags::MS_NODEV),
        "dev" => (false, MsFlags::MS_NODEV),
        "noexec" => (true, MsFlags::MS_NOEXEC),
        "exec" => (false, MsFlags::MS_NOEXEC),
        "sync" => (true, MsFlags::MS_SYNCHRONOUS),
        "async" => (false, MsFlags::MS_SYNCHRONOUS),
        "dirsync" => (true, MsFlags::MS_DIRSYNC),
        "remount" => (true, MsFlags::MS_REMOUNT),
        "mand" => (true, MsFlags::MS_MANDLOCK),
        "nomand" => (false, MsFlags::MS_MANDLOCK),
        "noatime" => (true, MsFlags::MS_NOATIME),
        "atime" => (false, MsFlags::MS_NOATIME),
        "nodiratime" => (true, MsFlags::MS_NODIRATIME),
        "diratime" => (false, MsFlags::MS_NODIRATIME),
        "relatime" => (true, MsFlags::MS_RELATIME),
        "norelatime" => (false, MsFlags::MS_RELATIME),
        "strictatime" => (true, MsFlags::MS_STRICTATIME),
        "nostrictatime" => (false, MsFlags::MS_STRICTATIME),
        "lazytime" => (true, MsFlags::MS_LAZYTIME),
        "nolazytime" => (false, MsFlags::MS_LAZYTIME),
        "silent" => (true, MsFlags::MS_SILENT),
        "loud" => (false, MsFlags::MS_SILENT),
        "bind" => (true, MsFlags::MS_BIND),
        "rbind" => (true, MsFlags::MS_BIND | MsFlags::MS_REC),
        _ => return None,
    };
    Some(f)
}

fn propagation(opt: &str) -> Option<MsFlags> {
    let f = match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    };
    Some(f)
}

impl Default for Options {
    fn default() -> Self {
        Options {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            bind: false,
            recursive: false,
        }
    }
}

pub fn parse(opts: &[String]) -> Options {
    let mut o = Options::default();
    for opt in opts {
        if let Some(p) = propagation(opt) {
            o.propagation.push(p);
        } else if let Some((set, flag)) = is_known(opt) {
            if flag.contains(MsFlags::MS_BIND) {
                o.bind = true;
                o.recursive |= flag.contains(MsFlags::MS_REC);
            } else if set {
                o.flags |= flag;
                o.cleared &= !flag;
            } else {
                o.flags &= !flag;
                o.cleared |= flag;
            }
        } else if !matches!(opt.as_str(), "tmpcopyup" | "idmap" | "ridmap") {
            o.data.push(opt.clone());
        }
    }
    o
}

/// A propagation option name as flags, for `linux.rootfsPropagation`.
pub fn root_propagation(name: &str) -> Option<MsFlags> {
    propagation(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_flags_propagation_and_data() {
        let o =
            parse(&["rbind", "ro", "nosuid", "rslave", "mode=755", "size=1m"].map(String::from));
        assert!(o.bind && o.recursive);
        assert_eq!(o.flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.data, vec!["mode=755", "size=1m"]);
    }

    #[test]
    fn later_options_win() {
        let o = parse(&["ro", "rw"].map(String::from));
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }
}
