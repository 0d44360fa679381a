//! `list`: every container under the root, with its derived status.

use super::Global;
use crate::error::{Error, Result};
use crate::state::{self, State};

pub fn list(g: &Global) -> Result<Vec<State>> {
    let entries = match std::fs::read_dir(&g.root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("readdir", &g.root, e)),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Some(id) = e.file_name().to_str().map(String::from) else {
            continue;
        };
        // A container being created or deleted right now has no state yet.
        if let Ok(s) = state::peek(&g.root, &id) {
            out.push(s);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}
