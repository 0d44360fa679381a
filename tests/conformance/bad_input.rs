//! Bad input: every runtime must exit non-zero and leave nothing behind (state, cgroup,
//! mount, process, fifo). berth additionally promises one error line naming the field.

use std::fs;

use berth_tests::{Bundle, Runtime};
use serde_json::json;

use crate::common::{check_berth_error, pass, sh_bundle, unsupported, SHORT};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("bad-input.json", malformed_json),
        case!("bad-input.type", wrong_field_type),
        case!("bad-input.args", empty_args),
        case!("bad-input.mount-destination", relative_mount_destination),
        case!("bad-input.rootfs", missing_rootfs),
        case!("bad-input.namespace", unknown_namespace_type),
        case!("bad-input.namespace", namespace_path_does_not_exist),
        case!("bad-input.mount-source", bind_mount_missing_source),
        case!("bad-input.cwd", relative_cwd),
        case!("bad-input.wrong-state", operations_on_unknown_id),
        case!("bad-input.wrong-state", kill_of_stopped_container),
    ]
}

/// `create` must fail with nothing left; for berth the one error line must name `field`.
fn rejected(rt: &Runtime, b: &Bundle, field: &str) -> Outcome {
    let id = rt.new_id();
    let out = rt.create(&id, b)?.failed()?;
    check_berth_error(&out.stderr, field)?;
    rt.assert_no_leftovers(&id, b)?;
    pass()
}

/// Like `rejected`, but a runtime other than berth that accepts the config is reported as
/// not validating it.
fn rejected_or_lenient(rt: &Runtime, b: &Bundle, field: &str) -> Outcome {
    let id = rt.new_id();
    let out = rt.create(&id, b)?;
    if out.success() && !berth_tests::runtime::is_berth() {
        rt.delete_force(&id)?;
        rt.assert_no_leftovers(&id, b)?;
        return unsupported(format!("{field} is not validated"));
    }
    let out = out.failed()?;
    check_berth_error(&out.stderr, field)?;
    rt.assert_no_leftovers(&id, b)?;
    pass()
}

fn malformed_json(rt: &Runtime) -> Outcome {
    let b = sh_bundle(rt, "true")?;
    fs::write(
        b.config_path(),
        "{\"ociVersion\": \"1.2.0\", \"process\": {",
    )?;
    // No field to name: the line and column of the break locate it.
    rejected(rt, &b, "column")
}

fn wrong_field_type(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "true")?;
    b.config["process"]["args"] = json!("sh -c true");
    b.save()?;
    rejected(rt, &b, "process.args")
}

fn empty_args(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "true")?;
    b.args(&[]);
    b.save()?;
    rejected(rt, &b, "process.args")
}

fn relative_mount_destination(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "true")?;
    if let Some(m) = b.config["mounts"].as_array_mut() {
        m.insert(
            2,
            json!({"destination": "mnt/relative", "type": "tmpfs", "source": "tmpfs"}),
        );
    }
    b.save()?;
    rejected_or_lenient(rt, &b, "mounts[2].destination")
}

fn missing_rootfs(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "true")?;
    b.config["root"]["path"] = json!("no-such-rootfs");
    b.save()?;
    rejected(rt, &b, "root.path")
}

fn unknown_namespace_type(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "true")?;
    b.push_namespace(json!({"type": "berthspace"}));
    b.save()?;
    rejected(rt, &b, "linux.namespaces[5].type")
}

fn namespace_path_does_not_exist(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "true")?;
    b.drop_namespace("network");
    b.push_namespace(json!({"type": "network", "path": "/proc/999999999/ns/net"}));
    b.save()?;
    rejected(rt, &b, "linux.namespaces[4].path")
}

fn bind_mount_missing_source(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "true")?;
    let src = rt.tmp().join("does-not-exist");
    b.push_mount(json!({"destination": "/mnt/x", "type": "bind",
                        "source": src.display().to_string(), "options": ["bind"]}));
    b.save()?;
    rejected(rt, &b, "mounts[7].source")
}

fn relative_cwd(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "true")?;
    b.config["process"]["cwd"] = json!("relative/dir");
    b.save()?;
    rejected(rt, &b, "process.cwd")
}

fn operations_on_unknown_id(rt: &Runtime) -> Outcome {
    let id = rt.new_id();
    for args in [
        vec!["start", id.as_str()],
        vec!["state", id.as_str()],
        vec!["kill", id.as_str(), "KILL"],
        vec!["delete", id.as_str()],
    ] {
        rt.cmd(&args)?.failed()?;
    }
    let entries = fs::read_dir(&rt.root).map(|d| d.count()).unwrap_or(0);
    berth_tests::ensure_eq!(
        entries,
        0,
        "entries under --root after operations on an unknown id"
    );
    pass()
}

fn kill_of_stopped_container(rt: &Runtime) -> Outcome {
    let b = sh_bundle(rt, "true")?;
    let id = rt.start_new(&b)?;
    rt.wait_status(&id, "stopped", SHORT)?;
    rt.kill(&id, "KILL")?.failed()?;
    rt.start(&id)?.failed()?;
    rt.delete(&id)?.ok()?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}
