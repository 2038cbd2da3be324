//! Termination signals as a file descriptor the poll loop can watch.
//!
//! The master is one thread around one `zmq::poll`; an ordinary signal
//! handler could only set a flag that the loop would not see until its poll
//! timed out. Instead the signals are blocked and read from a `signalfd`,
//! which `zmq::poll` watches like any socket, so SIGTERM wakes the loop at
//! once and is handled in ordinary code.
//!
//! The signals must be blocked before any other thread starts (libzmq's I/O
//! threads inherit the mask), so [`SignalFd::new`] is the first thing `main`
//! does.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The signals we turn into events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Int,
    Hup,
}

/// A non-blocking signalfd for SIGTERM, SIGINT and SIGHUP.
#[derive(Debug)]
pub struct SignalFd {
    fd: OwnedFd,
}

fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

impl SignalFd {
    /// Blocks SIGTERM, SIGINT and SIGHUP in this thread (and so in every
    /// thread started after it) and opens a signalfd for them.
    pub fn new() -> io::Result<SignalFd> {
        let set = sigset(&SIGNALS);
        // SAFETY: plain calls on a valid sigset; the returned fd is owned.
        unsafe {
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(SignalFd {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// Reads one pending signal, if any.
    pub fn read(&self) -> io::Result<Option<Signal>> {
        // SAFETY: we read at most the size of the struct into it.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::WouldBlock {
                Ok(None)
            } else {
                Err(err)
            };
        }
        if n as usize != size {
            return Ok(None);
        }
        Ok(match info.ssi_signo as libc::c_int {
            libc::SIGTERM => Some(Signal::Term),
            libc::SIGINT => Some(Signal::Int),
            libc::SIGHUP => Some(Signal::Hup),
            _ => None,
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Unblocks the signals again; a child process (pip, for the slave) must
/// not inherit a mask that makes it deaf to SIGTERM. Call in `pre_exec`.
pub fn unblock_in_child() -> io::Result<()> {
    let set = sigset(&SIGNALS);
    // SAFETY: async-signal-safe call on a valid set.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}
