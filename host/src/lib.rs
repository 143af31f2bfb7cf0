//! wasmhooks: a hook host for auth platforms.
//!
//! Events come in; the hooks that subscribe to them run their steps
//! (sandboxed WebAssembly plugins) and deliver the result.
//!
//! # Layout
//!
//! - [`runtime`]: the wasmtime engine, plugin loading and the compile cache,
//!   per-call limits and the capabilities a plugin is granted.
//! - [`store`]: durable state (hooks, plugins, events, the delivery queue,
//!   attempt logs) behind one trait, on SQLite or PostgreSQL.
//! - [`event`]: the event catalogue (Logto's names and registered custom
//!   ones) and the body a receiver gets.
//! - [`hook`]: a hook's definition (events, plugin steps, webhook target).
//! - [`delivery`]: webhook signatures and the retry policy.
//! - [`cli`]: the `wasmhooks` command line, a thin layer over the above.
#![deny(missing_docs)]

pub mod api;
pub mod cli;
pub mod config;
pub mod console;
pub mod delivery;
mod duration;
pub mod event;
pub mod hook;
pub mod host;
pub mod metrics;
pub mod net;
pub mod pipeline;
pub mod runtime;
pub mod secrets;
pub mod source;
pub mod store;
pub mod sync;
