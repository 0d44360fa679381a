//! The runtime's own log: `--log FILE` and `--log-format text|json`, the
//! way containerd and podman read runc's (`{"level","msg","time"}` lines).

use std::io::Write;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    file: Option<std::fs::File>,
    format: Format,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Set once by the CLI; without it messages go to stderr as text.
pub fn init(path: Option<&std::path::Path>, format: Format, debug: bool) -> std::io::Result<()> {
    let file = match path {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None => None,
    };
    let _ = LOGGER.set(Logger {
        file,
        format,
        debug,
    });
    Ok(())
}

pub fn error(msg: &str) {
    write("error", msg);
}

pub fn warn(msg: &str) {
    write("warning", msg);
}

pub fn debug(msg: &str) {
    if LOGGER.get().is_some_and(|l| l.debug) {
        write("debug", msg);
    }
}

fn write(level: &str, msg: &str) {
    let line = |format: Format| match format {
        Format::Json => {
            let v = serde_json::json!({"level": level, "msg": msg, "time": crate::state::now_rfc3339()});
            format!("{v}\n")
        }
        Format::Text => format!("{} {level}: {msg}\n", crate::state::now_rfc3339()),
    };
    match LOGGER.get() {
        Some(Logger {
            file: Some(f),
            format,
            ..
        }) => {
            let mut f: &std::fs::File = f;
            let _ = f.write_all(line(*format).as_bytes());
        }
        _ => {
            let _ = std::io::stderr().write_all(format!("berth: {level}: {msg}\n").as_bytes());
        }
    }
}
