//! piw-monitor's two modes: the interactive terminal UI and `--once`.

use std::io::IsTerminal;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use super::app::{Action, App, Key};
use super::client::{Client, HELLO_RETRY};
use super::state::Monitor;
use super::view::text_report;
use crate::config::monitor::MonitorConfig;
use crate::master::now_utc;
use crate::protocol::ControlMessage;

/// Once the master has answered, `--once` stops collecting when nothing
/// came for this long (the replay is one burst)...
const ONCE_QUIET: Duration = Duration::from_millis(300);
/// ...or this long after the answer, whichever is first.
const ONCE_COLLECT: Duration = Duration::from_secs(2);

/// How long to wait for the status socket to connect before the first HELLO.
const CONNECT_WAIT: Duration = Duration::from_secs(1);

/// While the master is silent, the TUI says HELLO again this often (a
/// restarted master does not know about us).
const SILENT_HELLO: Duration = Duration::from_secs(10);

/// `--once`: say HELLO, collect the replay, return the report. An error if
/// the master did not answer within `config.timeout`.
pub fn run_once(config: &MonitorConfig) -> Result<String, String> {
    let mut client = Client::connect(&config.status_queue, &config.control_queue)?;
    let start = Instant::now();
    let deadline = start + config.timeout;
    client.wait_status_connected(CONNECT_WAIT.min(config.timeout));
    let mut monitor = Monitor::new();
    let mut next_hello = Instant::now();
    let mut answered: Option<Instant> = None;
    let mut last_msg = Instant::now();
    loop {
        let now = Instant::now();
        if let Some(at) = answered {
            if now - last_msg >= ONCE_QUIET || now - at >= ONCE_COLLECT || now >= deadline {
                break;
            }
        } else if now >= deadline {
            return Err(format!(
                "no answer from the master within {:.1}s ({}); is piw-master running?",
                config.timeout.as_secs_f64(),
                client.describe()
            ));
        } else if now >= next_hello {
            client
                .send(ControlMessage::Hello)
                .map_err(|e| format!("cannot send HELLO ({}): {e}", client.describe()))?;
            next_hello = now + HELLO_RETRY;
        }
        let wake = match answered {
            Some(at) => (last_msg + ONCE_QUIET).min(at + ONCE_COLLECT).min(deadline),
            None => next_hello.min(deadline),
        };
        let wait = wake.saturating_duration_since(Instant::now());
        if client
            .status
            .poll(zmq::POLLIN, wait.as_millis().max(1) as i64)
            .map_err(|e| e.to_string())?
            == 0
        {
            continue;
        }
        while let Some(msg) = client.try_recv() {
            match msg {
                Ok(msg) => {
                    monitor.apply(&msg, now_utc());
                    last_msg = Instant::now();
                    if answered.is_none() && monitor.connected() {
                        answered = Some(last_msg);
                    }
                }
                Err(e) => log::warn!(target: "piw-monitor", "ignoring a status message: {e}"),
            }
        }
    }
    Ok(text_report(&monitor, now_utc()))
}

fn key_of(code: KeyCode, modifiers: KeyModifiers) -> Option<Key> {
    if modifiers.contains(KeyModifiers::CONTROL) {
        // Ctrl-C and Ctrl-D leave, as in any terminal program.
        return matches!(code, KeyCode::Char('c' | 'd')).then_some(Key::Char('q'));
    }
    Some(match code {
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Char(c) => Key::Char(c),
        _ => return None,
    })
}

/// The interactive monitor; returns when the user quits.
pub fn run_tui(config: &MonitorConfig) -> Result<(), String> {
    let mut client = Client::connect(&config.status_queue, &config.control_queue)?;
    client.wait_status_connected(CONNECT_WAIT);
    let mut terminal =
        ratatui::try_init().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    let result = tui_loop(&mut client, &mut terminal);
    ratatui::restore();
    result
}

fn tui_loop(client: &mut Client, terminal: &mut ratatui::DefaultTerminal) -> Result<(), String> {
    let mut app = App::new();
    let stdin = std::io::stdin();
    // Wake up on key presses too; without a terminal on stdin, crossterm
    // reads /dev/tty and we look every 100 ms.
    let stdin_fd = stdin.is_terminal().then(|| stdin.as_raw_fd());
    let mut next_hello = Instant::now();
    let mut next_tick = Instant::now();
    let mut dirty = true;
    loop {
        let now = Instant::now();
        let want_hello = !app.monitor.connected() || app.monitor.master.is_silent(now_utc());
        if want_hello && now >= next_hello {
            if let Err(e) = client.send(ControlMessage::Hello) {
                app.status_line = format!("Cannot reach the master: {e}");
                dirty = true;
            }
            next_hello = now
                + if app.monitor.connected() {
                    SILENT_HELLO
                } else {
                    HELLO_RETRY
                };
        }
        if now >= next_tick {
            app.tick(now_utc());
            next_tick = now + Duration::from_secs(1);
            dirty = true;
        }
        if dirty {
            terminal
                .draw(|f| super::render::draw(f, &app, now_utc()))
                .map_err(|e| format!("cannot draw: {e}"))?;
            dirty = false;
        }
        let mut wake = next_tick;
        if want_hello {
            wake = wake.min(next_hello);
        }
        let mut timeout = wake.saturating_duration_since(Instant::now());
        if stdin_fd.is_none() {
            timeout = timeout.min(Duration::from_millis(100));
        }
        {
            let mut items = vec![client.status.as_poll_item(zmq::POLLIN)];
            if let Some(fd) = stdin_fd {
                items.push(zmq::PollItem::from_fd(fd, zmq::POLLIN));
            }
            match zmq::poll(&mut items, timeout.as_millis().max(1) as i64) {
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(e) => return Err(format!("poll failed: {e}")),
            }
        }
        while let Some(msg) = client.try_recv() {
            match msg {
                Ok(msg) => app.on_status(&msg, now_utc()),
                Err(e) => app.status_line = format!("Ignoring a status message: {e}"),
            }
            dirty = true;
        }
        while event::poll(Duration::ZERO).map_err(|e| format!("terminal: {e}"))? {
            match event::read().map_err(|e| format!("terminal: {e}"))? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    let Some(key) = key_of(k.code, k.modifiers) else {
                        continue;
                    };
                    match app.on_key(key) {
                        Action::Quit => return Ok(()),
                        Action::Send(msg) => {
                            let result = client.send(msg);
                            app.sent(msg, result);
                        }
                        Action::None => {}
                    }
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
    }
}
