//! Drawing the interactive monitor with ratatui: the master's summary at
//! the top, the slave list in the middle, the selected slave's details
//! under it, and the keys and status line at the bottom. A pure function
//! of [`App`] and the clock, so it can be drawn on a test backend.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};

use super::app::App;
use super::state::Activity;
use super::view::{SLAVE_COLUMNS, master_lines, slave_details, slave_row};

/// The marker colour of an activity (piwheels' palette).
fn activity_style(a: Activity) -> Style {
    let c = match a {
        Activity::Idle => Color::DarkGray,
        Activity::Building => Color::LightGreen,
        Activity::Sending => Color::LightBlue,
        Activity::Cleaning => Color::LightMagenta,
        Activity::Silent => Color::Yellow,
        Activity::Dead => Color::LightRed,
    };
    Style::default().fg(c)
}

const KEYS: &str =
    "p pause  r resume  s sleep  w wake  x skip  K kill  T terminate  h help  q quit";

const HELP: &[&str] = &[
    "Up/Down, j/k, Home/End   select a build slave",
    "p   pause the master (SLEEP)      r   resume the master (WAKE)",
    "s   put the selected slave to sleep",
    "w   wake the selected slave",
    "x   skip the selected slave's current build",
    "K   kill the selected slave at its next request (asks first)",
    "T   terminate the master (asks first)",
    "q   quit the monitor (the master carries on)",
    "",
    "Markers: grey idle, green building, blue sending, magenta cleaning up,",
    "yellow silent, red dead or terminating.",
    "",
    "Press any key to close this help.",
];

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &App, now: DateTime<Utc>) {
    let master = master_lines(&app.monitor, now);
    let detail_height = if app.selected().is_some() { 5 } else { 0 };
    let [top, list, details, keys, status] = Layout::vertical([
        Constraint::Length(master.len() as u16 + 2),
        Constraint::Min(4),
        Constraint::Length(detail_height),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());

    let title = if app.monitor.master_paused() {
        " piwheels master (paused) "
    } else {
        " piwheels master "
    };
    frame.render_widget(
        Paragraph::new(master.into_iter().map(Line::from).collect::<Vec<_>>())
            .block(Block::bordered().title(title))
            .wrap(Wrap { trim: true }),
        top,
    );

    draw_slaves(frame, app, now, list);

    if let Some(slave) = app.selected() {
        let lines: Vec<Line> = slave_details(slave, now)
            .into_iter()
            .map(Line::from)
            .collect();
        frame.render_widget(
            Paragraph::new(lines)
                .block(Block::bordered().title(format!(" Slave {} ", slave.slave_id)))
                .wrap(Wrap { trim: true }),
            details,
        );
    }

    frame.render_widget(
        Paragraph::new(KEYS).style(Style::default().fg(Color::Cyan)),
        keys,
    );
    let (text, style) = match &app.confirm {
        Some(c) => (
            c.question.as_str(),
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ),
        None => (app.status_line.as_str(), Style::default()),
    };
    frame.render_widget(Paragraph::new(text).style(style), status);

    if app.show_help {
        let area = centered(frame.area(), 72, HELP.len() as u16 + 2);
        frame.render_widget(Clear, area);
        frame.render_widget(
            Paragraph::new(HELP.iter().map(|l| Line::from(*l)).collect::<Vec<_>>())
                .block(Block::bordered().title(" Help ")),
            area,
        );
    }
}

fn draw_slaves(frame: &mut Frame<'_>, app: &App, now: DateTime<Utc>, area: Rect) {
    let slaves = app.monitor.slaves();
    let rows: Vec<Vec<String>> = slaves.iter().map(|s| slave_row(s, now).to_vec()).collect();
    let mut widths: Vec<u16> = SLAVE_COLUMNS
        .iter()
        .map(|h| h.chars().count() as u16)
        .collect();
    widths[0] = 1;
    for row in &rows {
        for (i, cell) in row.iter().enumerate().skip(1) {
            widths[i] = widths[i].max(cell.chars().count() as u16);
        }
    }
    let constraints: Vec<Constraint> = widths
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i + 1 == widths.len() {
                Constraint::Min(*w)
            } else {
                Constraint::Length(*w)
            }
        })
        .collect();
    let table_rows = slaves.iter().zip(rows).map(|(s, cells)| {
        let marker = Cell::from(Span::styled("●", activity_style(s.activity(now))));
        Row::new(std::iter::once(marker).chain(cells.into_iter().skip(1).map(Cell::from)))
    });
    let header = Row::new(SLAVE_COLUMNS.iter().map(|h| Cell::from(*h)))
        .style(Style::default().fg(Color::Black).bg(Color::Cyan));
    let table = Table::new(table_rows, constraints)
        .column_spacing(2)
        .header(header)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .block(Block::bordered().title(format!(" Build slaves ({}) ", slaves.len())));
    let mut state = TableState::default().with_selected(app.selected_row());
    frame.render_stateful_widget(table, area, &mut state);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::app::Key;
    use crate::monitor::state::tests::{master_hello, master_stats, slave, slave_hello, t};
    use crate::protocol::{Record, StatusMessage, Value};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(app: &App, now: DateTime<Utc>) -> String {
        let mut term = Terminal::new(TestBackend::new(130, 30)).unwrap();
        term.draw(|f| draw(f, app, now)).unwrap();
        let buf = term.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn draws_master_slaves_and_details() {
        let mut app = App::new();
        let s = screen(&app, t(0));
        assert!(s.contains("Waiting for the master"), "{s}");
        app.on_status(&StatusMessage::Hello(master_hello()), t(0));
        app.on_status(&StatusMessage::Stats(master_stats(t(0))), t(0));
        app.on_status(
            &slave(
                3,
                t(0),
                "HELLO",
                slave_hello("pi4-three", "cp311").to_value(),
            ),
            t(0),
        );
        app.on_status(
            &slave(
                3,
                t(1),
                "BUILD",
                Value::Array(vec![Value::text("numpy"), Value::text("2.0")]),
            ),
            t(1),
        );
        let s = screen(&app, t(2));
        assert!(s.contains("Master piwheels-master"), "{s}");
        assert!(s.contains("Build slaves (1)"), "{s}");
        assert!(
            s.contains("pi4-three") && s.contains("Building numpy 2.0"),
            "{s}"
        );
        assert!(s.contains("Slave 3 pi4-three: Python 311"), "{s}");
        assert!(s.contains("Connected to the master"), "{s}");

        app.on_key(Key::Char('K'));
        assert!(screen(&app, t(2)).contains("Kill build slave 3 (pi4-three)? (y/n)"));
        app.on_key(Key::Char('n'));
        app.on_key(Key::Char('h'));
        assert!(screen(&app, t(2)).contains("terminate the master (asks first)"));
    }

    #[test]
    fn tiny_terminals_do_not_panic() {
        let mut app = App::new();
        app.on_status(&StatusMessage::Hello(master_hello()), t(0));
        app.on_status(
            &slave(1, t(0), "HELLO", slave_hello("x", "cp39").to_value()),
            t(0),
        );
        app.show_help = true;
        for (w, h) in [(1, 1), (10, 3), (40, 8)] {
            let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
            term.draw(|f| draw(f, &app, t(1))).unwrap();
        }
    }
}
