//! systemd's notify protocol (`Type=notify`), without a crate: one datagram
//! per state change to the socket named by `$NOTIFY_SOCKET`. Outside systemd
//! the variable is unset and every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A handle on `$NOTIFY_SOCKET`, read once at start-up.
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

#[derive(Debug)]
enum Target {
    Path(std::path::PathBuf),
    Abstract(Vec<u8>),
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET` and `$WATCHDOG_USEC`/`$WATCHDOG_PID`.
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|s| {
            use std::os::unix::ffi::OsStrExt;
            let bytes = s.as_bytes();
            match bytes.first() {
                Some(b'@') => Some(Target::Abstract(bytes[1..].to_vec())),
                Some(b'/') => Some(Target::Path(s.into())),
                _ => None,
            }
        });
        let pid_ok = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && pid_ok)
            .map(Duration::from_micros);
        Notifier { target, watchdog }
    }

    /// A notifier that does nothing (tests, tools).
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
        }
    }

    /// How often to send `WATCHDOG=1`, if the unit set `WatchdogSec`: half
    /// the interval, as sd_watchdog_enabled(3) advises.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    /// Sends one notification such as `READY=1`. Failures are logged, not
    /// fatal: a missing supervisor must not stop the master.
    pub fn notify(&self, state: &str) {
        let Some(target) = &self.target else {
            return;
        };
        let result = UnixDatagram::unbound().and_then(|sock| match target {
            Target::Path(p) => sock.send_to(state.as_bytes(), p).map(|_| ()),
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(state.as_bytes(), &addr).map(|_| ())
            }
        });
        if let Err(e) = result {
            log::warn!(target: "master", "cannot notify systemd ({state}): {e}");
        }
    }

    pub fn ready(&self) {
        self.notify("READY=1");
    }

    pub fn stopping(&self) {
        self.notify("STOPPING=1");
    }

    pub fn watchdog_ping(&self) {
        if self.watchdog.is_some() {
            self.notify("WATCHDOG=1");
        }
    }

    /// Asks for more time to start or stop.
    pub fn extend_timeout(&self, by: Duration) {
        self.notify(&format!("EXTEND_TIMEOUT_USEC={}", by.as_micros()));
    }

    pub fn status(&self, text: &str) {
        self.notify(&format!("STATUS={text}"));
    }
}
