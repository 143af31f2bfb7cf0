//! Write [wasmhooks](https://github.com/wasmhooks) plugins in Rust.
//!
//! A plugin is a WebAssembly component that implements the `wasmhooks:hook`
//! world (see `wit/hook.wit` in this crate). The host calls it once per event,
//! on a fresh instance, with the event and the config, secrets and outbound
//! hosts its hook grants. This crate gives that contract native types: the
//! payload is a [`serde_json::Value`], the answer an [`Outcome`], and
//! [`config`], [`secrets`], [`log`] and [`http`] are plain functions.
//!
//! # Example
//!
//! ```no_run
//! use wasmhooks_sdk::{export_hook, config, Event, Hook, Outcome, Error};
//!
//! struct AddTenant;
//!
//! impl Hook for AddTenant {
//!     fn handle(mut event: Event) -> Result<Outcome, Error> {
//!         let tenant = config::require("tenant")?;
//!         event.payload["tenant"] = tenant.into();
//!         Ok(Outcome::payload(event.payload))
//!     }
//! }
//!
//! export_hook!(AddTenant);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` (the crate is a
//! `cdylib`) and try it with `wasmhooks plugin run target/wasm32-wasip2/release/<name>.wasm
//! --event event.json --config tenant=acme`.
//!
//! # Layout
//!
//! - [`Event`], [`Outcome`], [`Patch`] and [`Error`]: the data that crosses the boundary.
//! - [`Hook`] and [`export_hook!`]: implement one function, export it with one macro.
//! - [`config`], [`secrets`], [`log`], [`http`]: what the host offers a plugin.
#![deny(missing_docs)]

pub use serde_json::{self, json, Value};

/// Bindings generated from `wit/hook.wit`; [`export_hook!`] uses them. Most
/// plugins never need them directly.
#[doc(hidden)]
pub mod bindings {
    #![allow(missing_docs, clippy::all, unsafe_code)]
    wit_bindgen::generate!({
        path: "wit",
        world: "hook",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_hook_world",
        default_bindings_module: "wasmhooks_sdk::bindings",
    });
}

pub mod config;
pub mod http;
pub mod log;
pub mod paths;
pub mod secrets;
mod types;

pub use types::{Error, Event, Outcome, Patch};

/// A plugin: one function from an event to an [`Outcome`].
///
/// Return `Err` to fail the call; the host records the message and applies
/// the hook's error policy (retry the delivery, or deny/allow a synchronous
/// trigger).
pub trait Hook {
    /// Handle one event.
    fn handle(event: Event) -> Result<Outcome, Error>;
}

/// Export a type that implements [`Hook`] as this component's handler.
///
/// Use it once, at the crate root of a `cdylib` crate.
#[macro_export]
macro_rules! export_hook {
    ($hook:ty) => {
        // Only a wasm build exports the handler; a native build of the same
        // crate (for unit tests or benchmarks of its logic) exports nothing.
        #[cfg(target_family = "wasm")]
        const _: () = {
            struct __WasmhooksHandler;

            impl $crate::bindings::exports::wasmhooks::hook::handler::Guest for __WasmhooksHandler {
                fn handle(
                    event: $crate::bindings::wasmhooks::hook::types::Event,
                ) -> ::core::result::Result<$crate::bindings::wasmhooks::hook::types::Outcome, $crate::__private::String> {
                    $crate::__private::dispatch::<$hook>(event)
                }
            }

            $crate::bindings::__export_hook_world!(__WasmhooksHandler with_types_in $crate::bindings);
        };
        #[cfg(not(target_family = "wasm"))]
        const _: fn($crate::Event) -> ::core::result::Result<$crate::Outcome, $crate::Error> =
            <$hook as $crate::Hook>::handle;
    };
}

/// Support for [`export_hook!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use std::string::String;

    use crate::bindings::wasmhooks::hook::types as wit;
    use crate::{Event, Hook};

    /// Convert the wire event, run the hook, convert its answer back.
    pub fn dispatch<H: Hook>(event: wit::Event) -> Result<wit::Outcome, String> {
        let event = Event::from_wit(event).map_err(|e| e.to_string())?;
        H::handle(event)
            .map(|outcome| outcome.into_wit())
            .map_err(|e| e.to_string())
    }
}
