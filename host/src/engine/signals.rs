//! The signals that end a run as Ctrl-C does: SIGINT, SIGTERM (what `docker stop`, Kubernetes,
//! `timeout` and systemd send) and SIGHUP (a closed terminal).

use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    /// Listen for all three; until this is dropped, they no longer end the process.
    pub fn listen() -> Result<Signals, String> {
        let on = |k: SignalKind| signal(k).map_err(|e| format!("listening for signals: {e}"));
        Ok(Signals {
            int: on(SignalKind::interrupt())?,
            term: on(SignalKind::terminate())?,
            hup: on(SignalKind::hangup())?,
        })
    }

    /// The next one's number.
    pub async fn next(&mut self) -> u8 {
        tokio::select! {
            _ = self.int.recv() => libc::SIGINT as u8,
            _ = self.term.recv() => libc::SIGTERM as u8,
            _ = self.hup.recv() => libc::SIGHUP as u8,
        }
    }
}

pub fn name(n: u8) -> &'static str {
    match i32::from(n) {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}
