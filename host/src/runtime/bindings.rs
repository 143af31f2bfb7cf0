//! Host bindings for the `wasmhooks:hook` world, generated once from the WIT
//! in `plugin-sdk/wit`. The standard `wasi:*` interfaces map onto
//! wasmtime-wasi's and wasmtime-wasi-http's own implementations.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../plugin-sdk/wit",
    world: "hook",
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
    },
    require_store_data_send: true,
});

pub use self::wasmhooks::hook::{config, log, secrets, types};
