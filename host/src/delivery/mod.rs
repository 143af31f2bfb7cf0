//! The built-in webhook step: [`signing`], the retry [`policy`], the HTTP
//! [`sender`], the [`scheduler`]'s per-endpoint slots, and the
//! [`dispatcher`] that works the delivery queue.

pub mod dispatcher;
pub mod policy;
pub mod replay;
pub mod scheduler;
pub mod sender;
pub mod signing;
