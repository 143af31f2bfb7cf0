//! Every way loading or calling a plugin can fail, as one typed error.

use std::time::Duration;

/// Who is to blame for a failure: the plugin (guest) or the host.
///
/// Guest failures are the plugin author's to fix; host failures (a full
/// instance pool, a used-up memory budget, a plugin that cannot be loaded,
/// a store error) are the operator's, and say nothing about the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The plugin misbehaved or was refused.
    Guest,
    /// The host could not do its part.
    Host,
}

/// A failure to load or to run a plugin.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The bytes are not a WebAssembly component (a core module, garbage, or
    /// a component that fails validation).
    #[error("not a valid WebAssembly component: {0}")]
    InvalidComponent(String),
    /// A valid component, but not one for the `wasmhooks:hook` world at a
    /// version this host speaks.
    #[error("component does not implement the wasmhooks:hook@0.1 world: {0}")]
    WrongWorld(String),
    /// The call ran past its deadline.
    #[error("deadline of {limit:?} exceeded: stopped after {took:.1?}")]
    DeadlineExceeded {
        /// The configured deadline.
        limit: Duration,
        /// How long the call had run when it was stopped.
        took: Duration,
    },
    /// Every instance slot stayed busy until the call's deadline.
    #[error("no instance slot came free in {waited:.1?} (all {slots} were busy)")]
    Busy {
        /// Instance slots of the runtime.
        slots: u32,
        /// How long the call waited.
        waited: Duration,
    },
    /// Growing the plugin's memory would take all calls together past the
    /// runtime's memory budget.
    #[error("the memory budget of {budget} bytes for all running plugins is used up")]
    MemoryBudget {
        /// The budget, in bytes.
        budget: usize,
    },
    /// The plugin tried to grow its memory past the cap.
    #[error("plugin exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The plugin recursed past the wasm stack cap.
    #[error("plugin overflowed its stack: recursion too deep")]
    StackOverflow,
    /// The plugin trapped (a panic, an unreachable, a bad memory access).
    #[error("plugin trapped: {message}")]
    Trap {
        /// The trap, with the plugin's panic message when it printed one.
        message: String,
    },
    /// The plugin returned `error(message)`.
    #[error("plugin failed: {0}")]
    Failed(String),
    /// The event handed to the plugin is bigger than the input cap.
    #[error("input of {size} bytes is over the {limit}-byte cap")]
    InputTooLarge {
        /// Size of the input.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// The plugin's answer is bigger than the output cap.
    #[error("output of {size} bytes is over the {limit}-byte cap")]
    OutputTooLarge {
        /// Size of the output.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// The plugin's answer is malformed: a payload that is not JSON, a bad
    /// header, a patch that does not apply, or an outcome that does not fit
    /// the kind of call.
    #[error("plugin returned an invalid outcome: {0}")]
    InvalidOutput(String),
    /// The plugin asked for a host its grant does not list.
    #[error("outbound HTTP to `{0}` is not granted to this plugin")]
    ForbiddenHost(String),
    /// The plugin asked for a granted host whose address is in a blocked
    /// range (private, loopback, link-local, unspecified) not explicitly
    /// allowed.
    #[error("outbound HTTP to `{host}` refused: address {address} is in a blocked range")]
    BlockedAddress {
        /// The host name asked for.
        host: String,
        /// The address it resolved to.
        address: String,
    },
    /// The host could not run the call (instance pool, cache or I/O trouble).
    #[error("host error: {0}")]
    Host(String),
}

impl PluginError {
    /// Whether the plugin or the host is to blame.
    pub fn blame(&self) -> Blame {
        match self {
            PluginError::Host(_) | PluginError::Busy { .. } | PluginError::MemoryBudget { .. } => {
                Blame::Host
            }
            _ => Blame::Guest,
        }
    }

    /// A short, stable name for the kind of failure, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::InvalidComponent(_) => "invalid_component",
            PluginError::WrongWorld(_) => "wrong_world",
            PluginError::DeadlineExceeded { .. } => "deadline_exceeded",
            PluginError::Busy { .. } => "busy",
            PluginError::MemoryBudget { .. } => "memory_budget",
            PluginError::MemoryLimit { .. } => "memory_limit",
            PluginError::StackOverflow => "stack_overflow",
            PluginError::Trap { .. } => "trap",
            PluginError::Failed(_) => "failed",
            PluginError::InputTooLarge { .. } => "input_too_large",
            PluginError::OutputTooLarge { .. } => "output_too_large",
            PluginError::InvalidOutput(_) => "invalid_output",
            PluginError::ForbiddenHost(_) => "forbidden_host",
            PluginError::BlockedAddress { .. } => "blocked_address",
            PluginError::Host(_) => "host",
        }
    }
}
