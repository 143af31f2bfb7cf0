//! The per-call store data: WASI with nothing ambient, the policed HTTP hooks,
//! the grants, the log sink, the memory limiter and the call's clock. A new one is built for
//! every call and dropped with it.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::{config, log, secrets, types};
use super::grants::SharedGrants;
use super::logs::{LogLevel, LogSink, Stream};
use super::memory::MemoryCap;
use super::outbound::Outbound;
use super::schedule::Ticks;

/// What one call's `Store` holds.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) outbound: Outbound,
    pub(crate) table: ResourceTable,
    pub(crate) grants: SharedGrants,
    pub(crate) logs: LogSink,
    pub(crate) memory: MemoryCap,
    /// The call's deadline and share of the CPU, checked on every tick.
    pub(crate) ticks: Ticks,
}

impl HostState {
    pub(crate) fn new(
        grants: SharedGrants,
        logs: LogSink,
        outbound: Outbound,
        memory: MemoryCap,
        ticks: Ticks,
    ) -> Self {
        let wasi = WasiCtx::builder()
            .stdout(logs.stream(Stream::Stdout))
            .stderr(logs.stream(Stream::Stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            wasi,
            http: WasiHttpCtx::new(),
            outbound,
            table: ResourceTable::new(),
            grants,
            logs,
            memory,
            ticks,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl types::Host for HostState {}

impl config::Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        self.grants.config.get(&key).cloned()
    }

    fn get_all(&mut self) -> Vec<(String, String)> {
        self.grants
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl secrets::Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        self.grants.secrets.get(&key).cloned()
    }
}

impl log::Host for HostState {
    fn write(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        self.logs.write(level, message);
    }
}
