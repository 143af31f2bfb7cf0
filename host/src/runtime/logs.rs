//! Log lines captured per call: the `log` import plus the plugin's stdout and
//! stderr, under one byte budget, returned to the caller with the outcome.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use serde::Serialize;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Fine detail.
    Trace,
    /// Debugging help.
    Debug,
    /// Normal operation; also what a plugin prints to stdout.
    Info,
    /// Something odd; also what a plugin prints to stderr.
    Warn,
    /// A failure.
    Error,
}

/// One captured line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Its level.
    pub level: LogLevel,
    /// Its text, without the trailing newline.
    pub message: String,
}

/// Everything a call logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Logs {
    /// The lines, in the order they were written.
    pub lines: Vec<LogLine>,
    /// True when lines were dropped because the budget ran out.
    pub truncated: bool,
}

#[derive(Debug, Default)]
struct State {
    logs: Logs,
    budget: usize,
    /// Bytes of stdout and stderr not yet ended by a newline.
    partial: [Vec<u8>; 2],
}

impl State {
    fn push(&mut self, level: LogLevel, message: String) {
        if message.len() > self.budget {
            self.logs.truncated = true;
            self.budget = 0;
            return;
        }
        self.budget -= message.len();
        self.logs.lines.push(LogLine { level, message });
    }
}

/// The shared sink every capture of one call writes into.
#[derive(Debug, Clone)]
pub(crate) struct LogSink(Arc<Mutex<State>>);

impl LogSink {
    /// A sink that keeps at most `budget` bytes of messages.
    pub(crate) fn new(budget: usize) -> Self {
        LogSink(Arc::new(Mutex::new(State {
            budget,
            ..State::default()
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Record one line from the `log` import.
    pub(crate) fn write(&self, level: LogLevel, message: String) {
        self.lock().push(level, message);
    }

    /// Record raw output; complete lines become log lines at `level`.
    fn output(&self, stream: Stream, bytes: &[u8]) {
        let mut state = self.lock();
        let level = stream.level();
        let index = stream as usize;
        // Never hold more pending bytes than the budget could ever accept.
        let room = state.budget.saturating_sub(state.partial[index].len());
        if bytes.len() > room {
            state.logs.truncated = true;
        }
        state.partial[index].extend_from_slice(&bytes[..bytes.len().min(room)]);
        while let Some(end) = state.partial[index].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = state.partial[index].drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..end]).into_owned();
            state.push(level, text);
        }
    }

    /// The plugin's panic message, when its stderr shows a Rust panic.
    pub(crate) fn panic_message(&self) -> Option<String> {
        let state = self.lock();
        let lines = &state.logs.lines;
        let start = lines
            .iter()
            .rposition(|l| l.level == LogLevel::Warn && l.message.contains("panicked at"))?;
        let message: Vec<&str> = lines[start + 1..]
            .iter()
            .filter(|l| l.level == LogLevel::Warn)
            .map(|l| l.message.as_str())
            .take_while(|m| !m.starts_with("note: "))
            .collect();
        Some(message.join("\n")).filter(|m| !m.is_empty())
    }

    /// Everything logged so far, with unfinished output lines flushed.
    pub(crate) fn finish(&self) -> Logs {
        let mut state = self.lock();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut state.partial[stream as usize]);
            if !rest.is_empty() {
                let text = String::from_utf8_lossy(&rest).into_owned();
                state.push(stream.level(), text);
            }
        }
        std::mem::take(&mut state.logs)
    }

    /// A WASI stdout or stderr that writes into this sink.
    pub(crate) fn stream(&self, stream: Stream) -> CapturedOutput {
        CapturedOutput {
            sink: self.clone(),
            stream,
        }
    }
}

/// Which output stream a capture stands for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Stdout = 0,
    Stderr = 1,
}

impl Stream {
    fn level(self) -> LogLevel {
        match self {
            Stream::Stdout => LogLevel::Info,
            Stream::Stderr => LogLevel::Warn,
        }
    }
}

/// stdout or stderr of one call. Writes always succeed, so a chatty plugin
/// never fails because of its logs; what is over the budget is dropped.
#[derive(Debug, Clone)]
pub(crate) struct CapturedOutput {
    sink: LogSink,
    stream: Stream,
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.sink.output(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_becomes_lines_within_budget() {
        let sink = LogSink::new(20);
        sink.output(Stream::Stdout, b"hello\nwor");
        sink.output(Stream::Stdout, b"ld\n");
        sink.write(LogLevel::Error, "0123456789abc".into());
        let logs = sink.finish();
        let messages: Vec<_> = logs.lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(messages, ["hello", "world"]);
        assert!(logs.truncated);
    }

    #[test]
    fn finds_rust_panic_message() {
        let sink = LogSink::new(1000);
        sink.output(
            Stream::Stderr,
            b"\nthread '<unnamed>' panicked at src/lib.rs:1:2:\nboom\nnote: run with `RUST_BACKTRACE=1`\n",
        );
        assert_eq!(sink.panic_message().as_deref(), Some("boom"));
    }
}
