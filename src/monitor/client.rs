//! The monitor's two sockets: a SUB on the master's status queue and a PUSH
//! on its control queue, as piwheels' monitor opens them.
//!
//! A SUB socket only receives what is published after its subscription has
//! reached the publisher, and nothing tells us when that is. piwheels'
//! monitor sleeps a second before saying HELLO. We wait until the SUB has
//! connected (a socket monitor tells us, bounded), say HELLO, and say it
//! again every [`HELLO_RETRY`] until the master's HELLO arrives, so a lost
//! first HELLO costs a second, not the whole replay.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::protocol::{ControlMessage, StatusMessage, WireMessage};

/// How often HELLO is repeated until the master answers.
pub const HELLO_RETRY: Duration = Duration::from_secs(1);

/// Largest status message accepted (they are small; a cap keeps a rogue
/// publisher from filling memory).
const MAX_STATUS_MSG: i64 = 1 << 20;

/// Connected status and control sockets.
pub struct Client {
    pub status: zmq::Socket,
    pub control: zmq::Socket,
    status_addr: String,
    control_addr: String,
    watch: Option<ConnectWatch>,
    // Dropped last: sockets close before the context terminates.
    _ctx: zmq::Context,
}

impl Client {
    /// Opens both sockets (connecting never fails for a well-formed address,
    /// even with no master; it only fails for a bad address).
    pub fn connect(status_addr: &str, control_addr: &str) -> Result<Client, String> {
        let ctx = zmq::Context::new();
        let status = ctx.socket(zmq::SUB).map_err(|e| e.to_string())?;
        status
            .set_maxmsgsize(MAX_STATUS_MSG)
            .and_then(|_| status.set_subscribe(b""))
            .and_then(|_| status.set_linger(0))
            .map_err(|e| e.to_string())?;
        let watch = ConnectWatch::new(&ctx, &status).ok();
        status
            .connect(status_addr)
            .map_err(|e| format!("cannot connect to the status queue {status_addr}: {e}"))?;
        let control = ctx.socket(zmq::PUSH).map_err(|e| e.to_string())?;
        control
            .set_sndhwm(10)
            .and_then(|_| control.set_linger(1000))
            .map_err(|e| e.to_string())?;
        control
            .connect(control_addr)
            .map_err(|e| format!("cannot connect to the control queue {control_addr}: {e}"))?;
        Ok(Client {
            status,
            control,
            status_addr: status_addr.to_owned(),
            control_addr: control_addr.to_owned(),
            watch,
            _ctx: ctx,
        })
    }

    /// Where the sockets point, for messages.
    pub fn describe(&self) -> String {
        format!(
            "status queue {}, control queue {}",
            self.status_addr, self.control_addr
        )
    }

    /// Waits (at most `timeout`) until the status socket has connected.
    pub fn wait_status_connected(&mut self, timeout: Duration) -> bool {
        let connected = self.watch.as_ref().is_some_and(|w| w.wait(timeout));
        // One answer is all we need; stop watching.
        self.watch = None;
        connected
    }

    /// Sends a control message, waiting at most 100 ms for queue space.
    pub fn send(&self, msg: ControlMessage) -> Result<(), String> {
        match self.control.poll(zmq::POLLOUT, 100) {
            Ok(n) if n > 0 => {}
            Ok(_) => return Err("the control queue is full (is the master running?)".into()),
            Err(e) => return Err(e.to_string()),
        }
        self.control
            .send(msg.encode(), zmq::DONTWAIT)
            .map_err(|e| e.to_string())
    }

    /// Takes one status message if one is waiting. A message that does not
    /// decode is `Some(Err(text))`; the caller reports it and carries on.
    pub fn try_recv(&self) -> Option<Result<StatusMessage, String>> {
        let frame = match self.status.recv_bytes(zmq::DONTWAIT) {
            Ok(f) => f,
            Err(zmq::Error::EAGAIN) => return None,
            Err(e) => return Some(Err(e.to_string())),
        };
        let mut more = false;
        while self.status.get_rcvmore().unwrap_or(false) {
            more = true;
            let _ = self.status.recv_bytes(zmq::DONTWAIT);
        }
        if more {
            return Some(Err("multi-part status message".into()));
        }
        Some(StatusMessage::decode(&frame).map_err(|e| e.to_string()))
    }
}

/// Watches a socket for its first connection, through a ZeroMQ socket
/// monitor. Create it *before* connecting the socket, or the event may be
/// missed. Used by piw-logger and piw-monitor to tell "nothing listens
/// there" from "connected".
pub struct ConnectWatch {
    events: zmq::Socket,
}

impl ConnectWatch {
    pub fn new(ctx: &zmq::Context, socket: &zmq::Socket) -> Result<ConnectWatch, zmq::Error> {
        static N: AtomicU32 = AtomicU32::new(0);
        let endpoint = format!(
            "inproc://piw-connect-monitor-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        socket.monitor(&endpoint, zmq::SocketEvent::CONNECTED.to_raw() as i32)?;
        let events = ctx.socket(zmq::PAIR)?;
        events.set_linger(0)?;
        events.connect(&endpoint)?;
        Ok(ConnectWatch { events })
    }

    /// Waits at most `timeout` for the connection; false if none came
    /// (e.g. nothing listens at the address yet).
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .events
                .poll(zmq::POLLIN, left.as_millis().max(1) as i64)
            {
                Ok(n) if n > 0 => {}
                _ => return false,
            }
            let Ok(head) = self.events.recv_bytes(zmq::DONTWAIT) else {
                return false;
            };
            while self.events.get_rcvmore().unwrap_or(false) {
                let _ = self.events.recv_bytes(zmq::DONTWAIT);
            }
            if head.len() >= 2
                && u16::from_le_bytes([head[0], head[1]]) == zmq::SocketEvent::CONNECTED.to_raw()
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
        }
    }
}
