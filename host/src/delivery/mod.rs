//! The built-in webhook step: signing, the retry policy, and (in the
//! sender and dispatcher) sending and scheduling.

pub mod policy;
pub mod sender;
pub mod signing;
