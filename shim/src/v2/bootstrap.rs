//! containerd's `start` and `delete` of the shim binary, and the task
//! service the long-lived shim serves.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{Config, DeleteResponse, ExitSignal, Flags, StartOpts};
use log::warn;

use crate::process::timestamp;
use crate::runtime::Runtime;
use crate::service::Service;

/// Annotation that groups a pod's containers into one shim (set by containerd's CRI).
const SANDBOX_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

pub struct Shim {
    exit: Arc<ExitSignal>,
    namespace: String,
    id: String,
    bundle: String,
}

impl containerd_shim::Shim for Shim {
    type T = Service;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        Shim {
            exit: Arc::new(ExitSignal::default()),
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            bundle: args.bundle.clone(),
        }
    }

    fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        // containerd runs `start` in the bundle directory.
        let grouping = sandbox_id(Path::new("config.json")).unwrap_or_else(|| opts.id.clone());
        let (_pid, address) = containerd_shim::spawn(opts, &grouping, Vec::new())?;
        // containerd reads `address` in the bundle to reconnect after a restart, and the
        // shim removes that socket when it exits.
        containerd_shim::synchronous::util::write_address(&address)?;
        Ok(address)
    }

    /// containerd's cleanup after a shim died: the container goes too.
    fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        let bundle = if self.bundle.is_empty() {
            std::env::current_dir().map_err(|e| containerd_shim::Error::Other(e.to_string()))?
        } else {
            PathBuf::from(&self.bundle)
        };
        match Runtime::load(&bundle) {
            Ok(rt) => {
                if let Err(e) = rt.simple("delete", &self.id, &bundle, &["--force"]) {
                    warn!("delete {}: {e}", self.id);
                }
            }
            Err(e) => warn!("{e}"),
        }
        unmount_rootfs(&bundle);
        remove_dead_socket(&bundle);
        let mut r = DeleteResponse::new();
        r.exit_status = 128 + libc::SIGKILL as u32;
        r.exited_at = Some(timestamp(SystemTime::now())).into();
        Ok(r)
    }

    fn wait(&mut self) {
        self.exit.wait();
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Service {
        Service::new(self.namespace.clone(), self.exit.clone(), publisher)
    }
}

fn sandbox_id(config: &Path) -> Option<String> {
    let raw = std::fs::read(config).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    v.get("annotations")?
        .get(SANDBOX_ANNOTATION)?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

pub(crate) fn unmount_rootfs(bundle: &Path) {
    let rootfs = bundle.join("rootfs");
    if let Some(p) = rootfs.to_str() {
        if let Err(e) = containerd_shim::mount::umount_recursive(Some(p), libc::MNT_DETACH) {
            warn!("unmount {p}: {e}");
        }
    }
}

/// A shim that was killed leaves its socket (containerd-shim-runc-v2's too). Removed only when
/// nothing answers on it: a live shim of the same pod serves other containers there.
fn remove_dead_socket(bundle: &Path) {
    let Ok(address) = std::fs::read_to_string(bundle.join("address")) else {
        return;
    };
    let path = address.trim().trim_start_matches("unix://");
    if path.is_empty() || path.starts_with('@') {
        return;
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            if let Err(e) = std::fs::remove_file(path) {
                warn!("remove {path}: {e}");
            }
        }
        _ => {}
    }
}
