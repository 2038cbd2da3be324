//! The interactive monitor's state beyond the model: which slave is
//! selected, a question awaiting `y`, the status line, and what each key
//! does. Sans-IO: a key goes in, an [`Action`] comes out for the caller to
//! carry out (send a control message, or quit).
//!
//! Keys (piwheels' hot-keys where it has them):
//!
//! | key | action |
//! |---|---|
//! | Up/Down, `k`/`j`, Home/End | select a slave |
//! | `p` | pause the master (`SLEEP null`) |
//! | `r` | resume the master (`WAKE null`) |
//! | `s` | put the selected slave to sleep (`SLEEP id`) |
//! | `w` | wake the selected slave (`WAKE id`) |
//! | `x` | skip the selected slave's build (`SKIP id`) |
//! | `K` | kill the selected slave (`KILL id`), after `y` |
//! | `T` | terminate the master (`QUIT`), after `y` |
//! | `h`, `?` | show or hide the help |
//! | `q`, Esc | quit the monitor (the master is not affected) |

use chrono::{DateTime, Utc};

use super::state::{Monitor, SlaveState};
use crate::protocol::{ControlMessage, StatusMessage};

/// A key press, as far as the monitor cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Up,
    Down,
    Home,
    End,
    Enter,
    Esc,
    Char(char),
}

/// What the caller should do after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond redrawing.
    None,
    /// Send this to the master's control queue.
    Send(ControlMessage),
    /// Leave the monitor.
    Quit,
}

/// A dangerous command waiting for `y`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    /// The question shown.
    pub question: String,
    pub message: ControlMessage,
}

/// The interactive monitor.
#[derive(Debug, Clone, Default)]
pub struct App {
    pub monitor: Monitor,
    /// The selected slave's id (kept by id, so re-sorting keeps it).
    selected: Option<u64>,
    /// A question awaiting `y`.
    pub confirm: Option<Confirm>,
    /// The bottom line: the last thing that happened.
    pub status_line: String,
    /// The help overlay is shown.
    pub show_help: bool,
}

impl App {
    pub fn new() -> App {
        App {
            status_line: "Waiting for the master...".into(),
            ..App::default()
        }
    }

    /// Feeds a status message from the master.
    pub fn on_status(&mut self, msg: &StatusMessage, now: DateTime<Utc>) {
        let was_connected = self.monitor.connected();
        self.monitor.apply(msg, now);
        if !was_connected && self.monitor.connected() {
            self.status_line = "Connected to the master".into();
        }
        self.fix_selection();
    }

    /// Once a second: forget terminated slaves.
    pub fn tick(&mut self, now: DateTime<Utc>) {
        if self.monitor.tick(now) {
            self.fix_selection();
        }
    }

    /// The selected slave.
    pub fn selected(&self) -> Option<&SlaveState> {
        self.selected.and_then(|id| self.monitor.slave(id))
    }

    /// The selected slave's row in display order.
    pub fn selected_row(&self) -> Option<usize> {
        let id = self.selected?;
        self.monitor.slaves().iter().position(|s| s.slave_id == id)
    }

    fn fix_selection(&mut self) {
        if self.selected().is_none() {
            self.selected = self.monitor.slaves().first().map(|s| s.slave_id);
        }
    }

    fn move_selection(&mut self, to: impl FnOnce(usize, usize) -> usize) {
        let slaves = self.monitor.slaves();
        if slaves.is_empty() {
            return;
        }
        let current = self.selected_row().unwrap_or(0);
        let row = to(current, slaves.len()).min(slaves.len() - 1);
        self.selected = Some(slaves[row].slave_id);
    }

    /// Tells the user how sending went.
    pub fn sent(&mut self, msg: ControlMessage, result: Result<(), String>) {
        self.status_line = match result {
            Ok(()) => format!("Sent {}", describe(msg)),
            Err(e) => format!("Could not send {}: {e}", describe(msg)),
        };
    }

    /// Handles a key.
    pub fn on_key(&mut self, key: Key) -> Action {
        if let Some(confirm) = self.confirm.take() {
            return if key == Key::Char('y') || key == Key::Char('Y') {
                Action::Send(confirm.message)
            } else {
                self.status_line = "Cancelled".into();
                Action::None
            };
        }
        if self.show_help {
            self.show_help = false;
            if matches!(key, Key::Char('h' | '?') | Key::Esc) {
                return Action::None;
            }
        }
        match key {
            Key::Up | Key::Char('k') => self.move_selection(|r, _| r.saturating_sub(1)),
            Key::Down | Key::Char('j') => self.move_selection(|r, _| r + 1),
            Key::Home => self.move_selection(|_, _| 0),
            Key::End => self.move_selection(|_, n| n - 1),
            Key::Char('q') | Key::Esc => return Action::Quit,
            Key::Char('h' | '?') => self.show_help = true,
            Key::Char('p') => return Action::Send(ControlMessage::Sleep(None)),
            Key::Char('r') => return Action::Send(ControlMessage::Wake(None)),
            Key::Char('T') => {
                self.confirm = Some(Confirm {
                    question: "Terminate the master? (y/n)".into(),
                    message: ControlMessage::Quit,
                });
            }
            Key::Char(c @ ('s' | 'w' | 'x' | 'K')) => {
                let Some(id) = self.selected().map(|s| s.slave_id) else {
                    self.status_line = "No build slave selected".into();
                    return Action::None;
                };
                let msg = match c {
                    's' => ControlMessage::Sleep(Some(id)),
                    'w' => ControlMessage::Wake(Some(id)),
                    'x' => ControlMessage::Skip(Some(id)),
                    _ => {
                        let label = self.selected().map_or("-", |s| s.label()).to_owned();
                        self.confirm = Some(Confirm {
                            question: format!("Kill build slave {id} ({label})? (y/n)"),
                            message: ControlMessage::Kill(Some(id)),
                        });
                        return Action::None;
                    }
                };
                return Action::Send(msg);
            }
            _ => {}
        }
        Action::None
    }
}

/// A control message in words, for the status line.
pub fn describe(msg: ControlMessage) -> String {
    match msg {
        ControlMessage::Hello => "HELLO".into(),
        ControlMessage::Quit => "QUIT (terminate the master)".into(),
        ControlMessage::Sleep(None) => "SLEEP (pause the master)".into(),
        ControlMessage::Wake(None) => "WAKE (resume the master)".into(),
        ControlMessage::Kill(None) => "KILL to every slave".into(),
        ControlMessage::Skip(None) => "SKIP to every slave".into(),
        ControlMessage::Sleep(Some(id)) => format!("SLEEP to slave {id}"),
        ControlMessage::Wake(Some(id)) => format!("WAKE to slave {id}"),
        ControlMessage::Kill(Some(id)) => format!("KILL to slave {id}"),
        ControlMessage::Skip(Some(id)) => format!("SKIP to slave {id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::state::tests::{master_hello, slave, slave_hello, t};
    use crate::protocol::Record;

    fn app_with_slaves() -> App {
        let mut app = App::new();
        app.on_status(&StatusMessage::Hello(master_hello()), t(0));
        assert_eq!(app.status_line, "Connected to the master");
        for (id, label) in [(4, "c"), (2, "a"), (9, "b")] {
            app.on_status(
                &slave(id, t(0), "HELLO", slave_hello(label, "cp311").to_value()),
                t(0),
            );
        }
        app
    }

    #[test]
    fn master_keys() {
        let mut app = App::new();
        assert_eq!(
            app.on_key(Key::Char('p')),
            Action::Send(ControlMessage::Sleep(None))
        );
        assert_eq!(
            app.on_key(Key::Char('r')),
            Action::Send(ControlMessage::Wake(None))
        );
        assert_eq!(app.on_key(Key::Char('s')), Action::None);
        assert_eq!(app.status_line, "No build slave selected");
        assert_eq!(app.on_key(Key::Char('q')), Action::Quit);
    }

    #[test]
    fn selection_follows_display_order_and_survives_changes() {
        let mut app = app_with_slaves();
        // The first slave seen is selected; the list is sorted by label.
        assert_eq!(app.selected().unwrap().slave_id, 4);
        assert_eq!(app.selected_row(), Some(2));
        app.on_key(Key::Home);
        assert_eq!(app.selected().unwrap().slave_id, 2);
        assert_eq!(
            app.on_key(Key::Char('s')),
            Action::Send(ControlMessage::Sleep(Some(2)))
        );
        app.on_key(Key::Down);
        assert_eq!(app.selected().unwrap().slave_id, 9);
        assert_eq!(
            app.on_key(Key::Char('w')),
            Action::Send(ControlMessage::Wake(Some(9)))
        );
        app.on_key(Key::End);
        app.on_key(Key::Down);
        assert_eq!(app.selected_row(), Some(2));
        assert_eq!(
            app.on_key(Key::Char('x')),
            Action::Send(ControlMessage::Skip(Some(4)))
        );
        app.on_key(Key::Char('k'));
        app.on_key(Key::Home);
        app.on_key(Key::Up);
        assert_eq!(app.selected().unwrap().slave_id, 2);
        // The selected slave dies and is forgotten: the first one is picked.
        app.on_status(&slave(2, t(1), "DIE", crate::protocol::Value::NoData), t(1));
        app.tick(t(10));
        assert_eq!(app.selected().unwrap().slave_id, 9);
    }

    #[test]
    fn dangerous_keys_ask_first() {
        let mut app = app_with_slaves();
        app.on_key(Key::Home);
        assert_eq!(app.on_key(Key::Char('K')), Action::None);
        assert!(
            app.confirm
                .as_ref()
                .unwrap()
                .question
                .contains("slave 2 (a)")
        );
        assert_eq!(
            app.on_key(Key::Char('y')),
            Action::Send(ControlMessage::Kill(Some(2)))
        );
        assert_eq!(app.on_key(Key::Char('T')), Action::None);
        assert_eq!(app.on_key(Key::Char('n')), Action::None);
        assert_eq!(app.status_line, "Cancelled");
        assert_eq!(app.on_key(Key::Char('T')), Action::None);
        assert_eq!(
            app.on_key(Key::Char('Y')),
            Action::Send(ControlMessage::Quit)
        );
    }

    #[test]
    fn help_toggles() {
        let mut app = App::new();
        app.on_key(Key::Char('h'));
        assert!(app.show_help);
        assert_eq!(app.on_key(Key::Char('h')), Action::None);
        assert!(!app.show_help);
        app.on_key(Key::Char('?'));
        // Any other key closes the help and still acts.
        assert_eq!(
            app.on_key(Key::Char('p')),
            Action::Send(ControlMessage::Sleep(None))
        );
        assert!(!app.show_help);
    }

    #[test]
    fn sent_reports() {
        let mut app = App::new();
        app.sent(ControlMessage::Sleep(Some(3)), Ok(()));
        assert_eq!(app.status_line, "Sent SLEEP to slave 3");
        app.sent(ControlMessage::Quit, Err("queue full".into()));
        assert!(
            app.status_line.contains("Could not send QUIT")
                && app.status_line.contains("queue full")
        );
    }
}
