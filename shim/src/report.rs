//! Telling the caller how creation went: our own JSON on stdout / --sync-fd / the detach pipe,
//! or conmon's sync-pipe messages (`{"data": N}` / `{"data": -1, "message": "..."}`).

use std::os::fd::{AsRawFd, OwnedFd};

use crate::logs::json_string;
use crate::sys;

#[derive(Clone, Copy)]
pub enum Proto {
    Own,
    /// conmon: the key is "data" for --api-version >= 1, else "pid" (or "exit_code" for exec).
    Conmon(&'static str),
}

pub struct Reporter {
    pub fd: Option<OwnedFd>,
    pub proto: Proto,
}

impl Reporter {
    fn send(&mut self, msg: &str) {
        if let Some(fd) = &self.fd {
            if sys::write_all(fd.as_raw_fd(), msg.as_bytes()).is_err() {
                // The caller went away (EPIPE): nobody to tell any more.
                self.fd = None;
            }
        }
    }

    pub fn pid(&mut self, pid: i32) {
        let msg = match self.proto {
            Proto::Own => format!("{{\"pid\":{pid}}}\n"),
            Proto::Conmon(key) => format!("{{\"{key}\": {pid}}}\n"),
        };
        self.send(&msg);
    }

    pub fn error(&mut self, text: &str) {
        let msg = match self.proto {
            Proto::Own => format!("{{\"error\":{}}}\n", json_string(text)),
            Proto::Conmon(key) => {
                format!("{{\"{key}\": -1, \"message\": {}}}\n", json_string(text))
            }
        };
        self.send(&msg);
    }

    /// conmon's exec: the second message is the exit status.
    pub fn status(&mut self, code: i32) {
        if let Proto::Conmon(key) = self.proto {
            self.send(&format!("{{\"{key}\": {code}}}\n"));
        }
    }

    pub fn close(&mut self) {
        self.fd = None;
    }
}
