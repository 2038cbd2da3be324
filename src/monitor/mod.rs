//! piw-monitor: watch (and steer) a running master from its status and
//! control queues.
//!
//! - [`state`]: the model, fed only by status messages (sans-IO, tested);
//! - [`app`]: selection, confirmations and what each key does (sans-IO);
//! - [`view`]: the words shown, shared by both displays, and the `--once`
//!   text report;
//! - [`render`]: the ratatui screen;
//! - [`client`]: the SUB/PUSH sockets (HELLO and its retries);
//! - [`run`]: the two modes, interactive and `--once`.
//!
//! The wire traffic is piwheels': `HELLO` on the control queue makes the
//! master publish `HELLO MasterHello`, its recent `STATS` and a replay of
//! every slave; the keys send `SLEEP`/`WAKE`/`SKIP`/`KILL` with a slave id
//! or null, and `QUIT`.

pub mod app;
pub mod client;
pub mod render;
pub mod run;
pub mod state;
pub mod view;

pub use app::App;
pub use state::Monitor;
