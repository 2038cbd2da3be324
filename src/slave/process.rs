//! Child processes with a time limit and a stop button: pip, ldd, dpkg.
//!
//! Each child runs in its own process group, so that stopping it also
//! stops everything it started (pip runs the build backend, which runs
//! compilers). Stopping sends SIGTERM to the group and SIGKILL after a
//! grace period; whatever is left of the group when the leader exits is
//! killed before the leader is reaped, so a build can never leave
//! processes behind and the group id cannot be reused while we signal it.
//!
//! Waiting uses a pidfd (Linux 5.3+) and the stop flag's socket in one
//! `poll`, so nothing busy-waits; on older kernels it falls back to
//! checking every 100 ms.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A one-way, sticky "please stop" that a thread can wait on in `poll`.
#[derive(Debug)]
pub struct StopFlag {
    set: AtomicBool,
    tx: UnixStream,
    rx: UnixStream,
}

impl StopFlag {
    pub fn new() -> io::Result<StopFlag> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(StopFlag {
            set: AtomicBool::new(false),
            tx,
            rx,
        })
    }

    /// Raises the flag (idempotent).
    pub fn set(&self) {
        if !self.set.swap(true, Ordering::SeqCst) {
            let _ = (&self.tx).write(&[1]);
        }
    }

    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Readable once the flag is raised (and stays readable).
    pub fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }
}

/// A level-triggered "I am done" from a worker thread to the poll loop.
#[derive(Debug)]
pub struct Doorbell {
    tx: UnixStream,
    rx: UnixStream,
}

impl Doorbell {
    pub fn new() -> io::Result<Doorbell> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Doorbell { tx, rx })
    }

    /// Rings (the loop sees [`fd`](Self::fd) readable).
    pub fn ring(&self) {
        let _ = (&self.tx).write(&[1]);
    }

    /// Empties the bell after the loop saw it.
    pub fn clear(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.rx).read(&mut buf), Ok(n) if n > 0) {}
    }

    pub fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }
}

/// How a child's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited by itself.
    Exited(ExitStatus),
    /// It ran past its time limit and was killed.
    TimedOut,
    /// The stop flag was raised and it was killed.
    Stopped,
}

fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: a plain syscall; on success the fd is ours to own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just gave us this descriptor.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Has `pid` (our child) exited? Does not reap it.
fn has_exited(pid: libc::pid_t) -> bool {
    // SAFETY: waitid writes into the zeroed siginfo we own.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        // An error (ECHILD) means there is nothing left to wait for.
        rc != 0 || info.si_pid() != 0
    }
}

fn kill_group(pgid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: signalling a process group we created; ESRCH is harmless.
    unsafe {
        libc::kill(-pgid, sig);
    }
}

/// Sleeps in `poll` until one of `fds` is readable or `timeout` passes.
fn wait_fds(fds: &[RawFd], timeout: Duration) {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_millis().clamp(0, i32::MAX as u128) as libc::c_int;
    // Round up so we never wake a hair early and spin.
    let ms = if timeout > Duration::from_millis(ms as u64) {
        ms.saturating_add(1)
    } else {
        ms
    };
    // SAFETY: the array is valid for its length.
    unsafe {
        libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms);
    }
}

/// Waits until the child exits, `until` passes, or (if given) `stop` is
/// raised. Returns whether it exited.
fn wait_until(
    pid: libc::pid_t,
    pidfd: Option<&OwnedFd>,
    stop: Option<&StopFlag>,
    until: Option<Instant>,
) -> bool {
    loop {
        if has_exited(pid) {
            return true;
        }
        if stop.is_some_and(StopFlag::is_set) {
            return false;
        }
        let now = Instant::now();
        if until.is_some_and(|u| now >= u) {
            return false;
        }
        let mut fds = Vec::with_capacity(2);
        let mut slice = Duration::from_secs(3600);
        match pidfd {
            Some(fd) => fds.push(fd.as_raw_fd()),
            None => slice = Duration::from_millis(100),
        }
        if let Some(s) = stop {
            fds.push(s.fd());
        }
        if let Some(u) = until {
            slice = slice.min(u - now);
        }
        wait_fds(&fds, slice);
    }
}

/// Runs `cmd` in a new process group until it exits, `limit` passes or
/// `stop` is raised; in the last two cases the group gets SIGTERM and,
/// `grace` later, SIGKILL. The command's own stdio settings are kept.
/// Returns how it ended and how long it ran.
pub fn run(
    cmd: &mut Command,
    limit: Option<Duration>,
    grace: Duration,
    stop: &StopFlag,
) -> io::Result<(Ended, Duration)> {
    cmd.process_group(0);
    // SAFETY: only async-signal-safe calls run between fork and exec.
    unsafe {
        cmd.pre_exec(crate::signals::unblock_in_child);
    }
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let pidfd = pidfd_open(pid);
    let deadline = limit.map(|l| start + l);
    let mut ended = None;
    if !wait_until(pid, pidfd.as_ref(), Some(stop), deadline) {
        ended = Some(if stop.is_set() {
            Ended::Stopped
        } else {
            Ended::TimedOut
        });
        kill_group(pid, libc::SIGTERM);
        wait_until(pid, pidfd.as_ref(), None, Some(Instant::now() + grace));
    }
    // Anything the child left behind goes with it; the leader is not yet
    // reaped, so the group id is still ours.
    kill_group(pid, libc::SIGKILL);
    let status = child.wait()?;
    let elapsed = start.elapsed();
    Ok((ended.unwrap_or(Ended::Exited(status)), elapsed))
}

/// Sets the data-segment limit piwheels puts on builds (in the child).
pub fn limit_data(cmd: &mut Command, bytes: u64) {
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: bytes as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_DATA, &lim) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        c
    }

    /// Running (not a zombie waiting for a reaper that may never come in
    /// a container whose PID 1 does not reap).
    fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => false,
        }
    }

    #[test]
    fn exit_status_is_reported() {
        let stop = StopFlag::new().unwrap();
        let (e, _) = run(&mut sh("exit 3"), None, Duration::from_secs(1), &stop).unwrap();
        match e {
            Ended::Exited(s) => assert_eq!(s.code(), Some(3)),
            other => panic!("{other:?}"),
        }
        let (e, _) = run(
            &mut sh("true"),
            Some(Duration::from_secs(30)),
            Duration::ZERO,
            &stop,
        )
        .unwrap();
        assert!(matches!(e, Ended::Exited(s) if s.success()));
        assert!(
            run(
                &mut Command::new("/nonexistent/x"),
                None,
                Duration::ZERO,
                &stop
            )
            .is_err()
        );
    }

    #[test]
    fn time_limit_kills_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("piw-proc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("grandchild");
        // A grandchild that ignores SIGTERM and outlives its parent.
        let script = format!(
            "sh -c 'trap \"\" TERM; echo $$ > {p}; while :; do sleep 1; done' & wait",
            p = pidfile.display()
        );
        let stop = StopFlag::new().unwrap();
        let (e, took) = run(
            &mut sh(&script),
            Some(Duration::from_millis(500)),
            Duration::from_millis(300),
            &stop,
        )
        .unwrap();
        assert_eq!(e, Ended::TimedOut);
        assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(10));
        let gc: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild was SIGKILLed with its group; it may take a moment
        // to be reaped by init.
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(gc) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(gc), "grandchild {gc} survived");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stop_flag_ends_a_run_promptly() {
        let stop = std::sync::Arc::new(StopFlag::new().unwrap());
        let s2 = stop.clone();
        let t = std::thread::spawn(move || {
            run(&mut sh("sleep 60"), None, Duration::from_secs(5), &s2).unwrap()
        });
        stop.set();
        stop.set();
        assert!(stop.is_set());
        let (e, took) = t.join().unwrap();
        assert_eq!(e, Ended::Stopped);
        // sleep dies on SIGTERM at once; no need for the grace period.
        assert!(took < Duration::from_secs(4), "{took:?}");
    }

    #[test]
    fn doorbell_rings_until_cleared() {
        let bell = Doorbell::new().unwrap();
        let readable = |fd| {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, 0) == 1 }
        };
        assert!(!readable(bell.fd()));
        bell.ring();
        bell.ring();
        assert!(readable(bell.fd()));
        bell.clear();
        assert!(!readable(bell.fd()));
    }

    #[test]
    fn data_limit_applies_to_the_child() {
        let stop = StopFlag::new().unwrap();
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg("test \"$(ulimit -d)\" = 1048576")
            .stdin(Stdio::null());
        limit_data(&mut c, 1 << 30);
        let (e, _) = run(&mut c, None, Duration::ZERO, &stop).unwrap();
        assert!(matches!(e, Ended::Exited(s) if s.success()), "{e:?}");
    }
}
