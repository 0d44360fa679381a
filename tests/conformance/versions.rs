//! config.json of every released runtime-spec version is accepted; a future major is not.

use berth_tests::{ensure, ensure_eq, Runtime};
use serde_json::json;

use crate::common::{check_berth_error, pass, sh_bundle, unsupported};
use crate::{case, Case, Outcome};

pub fn cases() -> Vec<Case> {
    vec![
        case!("config.version", accepts_1_0_0),
        case!("config.version", accepts_1_0_2),
        case!("config.version", accepts_1_1_0),
        case!("config.version", accepts_1_2_0),
        case!("config.version", accepts_1_3_0),
        case!("config.version-major", rejects_2_0_0),
    ]
}

fn accepts(rt: &Runtime, version: &str) -> Outcome {
    let mut b = sh_bundle(rt, "echo ok")?;
    b.config["ociVersion"] = json!(version);
    b.save()?;
    let id = rt.new_id();
    let out = rt.run(&id, &b)?;
    if !out.success() && !berth_tests::runtime::is_berth() {
        rt.assert_no_leftovers(&id, &b)?;
        return unsupported(format!(
            "ociVersion {version} refused: {}",
            out.stderr.lines().last().unwrap_or("")
        ));
    }
    ensure!(out.success(), "ociVersion {version} refused: {out}");
    ensure_eq!(out.stdout.trim(), "ok", "output with ociVersion {version}");
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}

fn accepts_1_0_0(rt: &Runtime) -> Outcome {
    accepts(rt, "1.0.0")
}
fn accepts_1_0_2(rt: &Runtime) -> Outcome {
    accepts(rt, "1.0.2")
}
fn accepts_1_1_0(rt: &Runtime) -> Outcome {
    accepts(rt, "1.1.0")
}
fn accepts_1_2_0(rt: &Runtime) -> Outcome {
    accepts(rt, "1.2.0")
}
fn accepts_1_3_0(rt: &Runtime) -> Outcome {
    accepts(rt, "1.3.0")
}

fn rejects_2_0_0(rt: &Runtime) -> Outcome {
    let mut b = sh_bundle(rt, "echo ran")?;
    b.config["ociVersion"] = json!("2.0.0");
    b.save()?;
    let id = rt.new_id();
    let out = rt.create(&id, &b)?;
    if out.success() && !berth_tests::runtime::is_berth() {
        rt.delete_force(&id)?;
        return unsupported("runtime does not check ociVersion");
    }
    let out = out.failed()?;
    check_berth_error(&out.stderr, "ociVersion")?;
    rt.assert_no_leftovers(&id, &b)?;
    pass()
}
