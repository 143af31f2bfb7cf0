//! Log lines captured with the call and returned with its outcome.
//!
//! Output written to stdout and stderr (`println!`, `eprintln!`, panics) is
//! captured too; these functions add a level.

use crate::bindings::wasmhooks::hook::log::{write, Level};

/// Log at debug level.
pub fn debug(message: &str) {
    write(Level::Debug, message)
}

/// Log at info level.
pub fn info(message: &str) {
    write(Level::Info, message)
}

/// Log at warn level.
pub fn warn(message: &str) {
    write(Level::Warn, message)
}

/// Log at error level.
pub fn error(message: &str) {
    write(Level::Error, message)
}
