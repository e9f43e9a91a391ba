//! Log output: text for people (colour only on a terminal) or one JSON
//! object a line for log shippers, to stderr, filtered by `RUST_LOG`.
//! Lines are formatted where they happen and written by a thread of their
//! own (`tracing-appender`), so no request waits for stderr. Access lines,
//! one per request, are gathered and handed over together, at the latest
//! [`ACCESS_EVERY`] after they were made: a busy server pays one write for
//! many of them, not a write and a thread wake-up each. Should the output
//! stall, lines beyond a large buffer are dropped rather than requests held
//! up.

use std::cell::RefCell;
use std::io::{BufWriter, IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// How log lines are written (`--log-format`, `LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colours only when stderr is a terminal.
    Text,
    /// One JSON object a line, the event's fields at its top level.
    Json,
}

/// Longest an access line waits to be handed to the log writer.
pub const ACCESS_EVERY: Duration = Duration::from_millis(100);

/// Access lines are handed over as soon as this many bytes are waiting.
const ACCESS_BATCH_BYTES: usize = 32 * 1024;

/// Keeps the log writer running; dropping it writes out every line still
/// waiting (access lines included).
pub struct LogGuard {
    _writer: WorkerGuard,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        hand_over_access_lines();
    }
}

/// Installs the process's log subscriber: `RUST_LOG` when set, otherwise
/// `default_filter` (e.g. `info,sqlx=warn`). Keep the guard it returns until
/// the process ends.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(format: LogFormat, default_filter: &str) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into());
    let (writer, guard) =
        NonBlockingBuilder::default().thread_name("log-writer").finish(BufWriter::new(std::io::stderr()));
    let _ = WRITER.set((writer.clone(), format));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    let _ = std::thread::Builder::new().name("access-lines".into()).spawn(|| {
        loop {
            std::thread::sleep(ACCESS_EVERY);
            hand_over_access_lines();
        }
    });
    LogGuard { _writer: guard }
}

/// The process's log writer and format, once [`init`] ran.
static WRITER: OnceLock<(NonBlocking, LogFormat)> = OnceLock::new();

thread_local! {
    /// A line being put together, reused by the thread's next line.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Access lines not yet handed to the log writer.
static ACCESS_LINES: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Adds one line that `format_line` appends to a buffer, in the process's
/// log format, to the access lines for the log writer. `false` when the
/// process has no log writer of its own (a server inside a test): the
/// caller logs through `tracing` instead.
pub(super) fn write_access_line(format_line: impl FnOnce(LogFormat, &mut Vec<u8>)) -> bool {
    let Some((_, format)) = WRITER.get() else { return false };
    let full = LINE.with_borrow_mut(|line| {
        line.clear();
        format_line(*format, line);
        let mut waiting = ACCESS_LINES.lock().unwrap_or_else(|e| e.into_inner());
        waiting.extend_from_slice(line);
        waiting.len() >= ACCESS_BATCH_BYTES
    });
    if full {
        hand_over_access_lines();
    }
    true
}

/// Hands the access lines waiting to the log writer.
fn hand_over_access_lines() {
    let Some((writer, _)) = WRITER.get() else { return };
    let lines = std::mem::take(&mut *ACCESS_LINES.lock().unwrap_or_else(|e| e.into_inner()));
    if !lines.is_empty() {
        let _ = writer.clone().write_all(&lines);
    }
}
