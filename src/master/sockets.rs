//! The master's external sockets: one of each, bound where the configuration
//! says, with the options piwheels sets (IPv6 on so `tcp://*` also listens on
//! IPv6, 1 s linger, its HWMs) plus a message-size cap on every inbound
//! socket, so a hostile peer cannot make the master buffer a gigabyte.

use std::path::Path;

use crate::config::master::{MasterConfig, Queue, ipc_path};

/// Largest single frame accepted per socket. Build logs travel in `BUILT`
/// and `IMPORT`, so those sockets allow big messages; everything else is
/// small by construction. libzmq drops a peer that exceeds the cap.
const MAX_SLAVE_MSG: i64 = 64 << 20;
const MAX_IMPORT_MSG: i64 = 64 << 20;
const MAX_FILE_MSG: i64 = 1 << 20;
const MAX_CONTROL_MSG: i64 = 64 << 10;
const MAX_LOG_MSG: i64 = 64 << 10;

/// An error binding a socket, naming the option so the user knows what to
/// change.
#[derive(Debug)]
pub struct BindError(pub String);

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every socket of the master. Created once; the poll loop borrows them.
pub struct Sockets {
    /// PULL: HELLO/QUIT/KILL/SKIP/SLEEP/WAKE from monitors.
    pub control: zmq::Socket,
    /// PUB: STATS, SLAVE and HELLO for monitors.
    pub status: zmq::Socket,
    /// ROUTER: build slaves (REQ).
    pub slave: zmq::Socket,
    /// ROUTER: file transfers (DEALER), raw frames.
    pub file: zmq::Socket,
    /// ROUTER: piw-import/add/remove/rebuild (REQ).
    pub import: zmq::Socket,
    /// PULL: piw-logger.
    pub log: zmq::Socket,
    // Dropped last: sockets must close before the context terminates.
    pub ctx: zmq::Context,
}

impl Sockets {
    /// Binds every external queue. Any failure is fatal and says which
    /// option to look at.
    pub fn bind(config: &MasterConfig) -> Result<Sockets, BindError> {
        let ctx = zmq::Context::new();
        let control = bind(&ctx, zmq::PULL, config, Queue::Control, |s| {
            s.set_rcvhwm(10)?;
            s.set_maxmsgsize(MAX_CONTROL_MSG)
        })?;
        let status = bind(&ctx, zmq::PUB, config, Queue::Status, |_| Ok(()))?;
        let slave = bind(&ctx, zmq::ROUTER, config, Queue::Slave, |s| {
            s.set_maxmsgsize(MAX_SLAVE_MSG)
        })?;
        let file = bind(&ctx, zmq::ROUTER, config, Queue::File, |s| {
            s.set_rcvhwm(500)?;
            s.set_sndhwm(500)?;
            s.set_maxmsgsize(MAX_FILE_MSG)
        })?;
        let import = bind(&ctx, zmq::ROUTER, config, Queue::Import, |s| {
            s.set_maxmsgsize(MAX_IMPORT_MSG)
        })?;
        let log = bind(&ctx, zmq::PULL, config, Queue::Log, |s| {
            s.set_maxmsgsize(MAX_LOG_MSG)?;
            // Hits a logger already sent are read, not discarded, when it
            // disconnects while we are busy.
            s.set_linger(-1)
        })?;
        // Monitors run as other users of the piwheels group.
        for q in [Queue::Control, Queue::Status] {
            if let Some(path) = ipc_path(config.queue(q)) {
                allow_group_write(&path).map_err(|e| {
                    BindError(format!(
                        "cannot make --{} socket {} group-writable: {e}",
                        q.option(),
                        path.display()
                    ))
                })?;
            }
        }
        Ok(Sockets {
            control,
            status,
            slave,
            file,
            import,
            log,
            ctx,
        })
    }
}

fn bind(
    ctx: &zmq::Context,
    kind: zmq::SocketType,
    config: &MasterConfig,
    queue: Queue,
    setup: impl FnOnce(&zmq::Socket) -> zmq::Result<()>,
) -> Result<zmq::Socket, BindError> {
    let addr = config.queue(queue);
    let fail = |e: zmq::Error| BindError(format!("cannot bind --{} {addr}: {e}", queue.option()));
    let sock = ctx.socket(kind).map_err(fail)?;
    sock.set_ipv6(true).map_err(fail)?;
    sock.set_linger(1000).map_err(fail)?;
    setup(&sock).map_err(fail)?;
    if let Some(path) = ipc_path(addr) {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.is_dir() {
                return Err(BindError(format!(
                    "cannot bind --{} {addr}: directory {} does not exist",
                    queue.option(),
                    dir.display()
                )));
            }
        }
    }
    sock.bind(addr).map_err(fail)?;
    Ok(sock)
}

fn allow_group_write(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path)?.permissions();
    perms.set_mode(perms.mode() | 0o020);
    std::fs::set_permissions(path, perms)
}

#[cfg(test)]
mod tests {
    unsafe extern "C" {
        /// Defined by .cargo/libzmq/piwheels-libzmq-config.hpp, which the
        /// build forces into every libzmq source file.
        static piwheels_zmq_message_pipe_granularity: std::ffi::c_int;
    }

    /// The libzmq we link was built with our compile-time settings (the
    /// 100-slave memory figure depends on it). Building outside this
    /// repository's cargo configuration fails to link this test.
    #[test]
    fn libzmq_uses_our_pipe_granularity() {
        // SAFETY: a constant int defined in the linked libzmq.
        let granularity = unsafe { piwheels_zmq_message_pipe_granularity };
        assert_eq!(granularity, 32);
    }
}
