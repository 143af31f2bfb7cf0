//! Guest memory: a cap per call and one budget shared by every call.
//!
//! The per-call cap stops one plugin from taking more than its share; the
//! budget stops many concurrent calls from adding up to more than the
//! operator allows. A growth past either fails, and the call ends with an
//! error naming which one was hit. What a call reserved returns to the budget
//! when its store is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use wasmtime::ResourceLimiter;

/// A call holding at most this much may use the budget's last sixteenth.
const SMALL_CALL: usize = 8 << 20;

/// Linear memory all calls together may hold, in bytes.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    total: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    pub(crate) fn new(total: usize) -> Arc<Self> {
        Arc::new(MemoryBudget {
            total,
            used: AtomicUsize::new(0),
        })
    }

    /// Take `bytes` from the budget for a call that will then hold
    /// `call_total`, or nothing if they are not all there. The last
    /// sixteenth of the budget is kept for small calls, so that calls that
    /// grow large cannot starve ordinary hooks of their first pages.
    fn reserve(&self, bytes: usize, call_total: usize) -> bool {
        let limit = if call_total <= SMALL_CALL {
            self.total
        } else {
            self.total - self.total / 16
        };
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&after| after <= limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes reserved by calls now running.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The budget, in bytes.
    pub(crate) fn total(&self) -> usize {
        self.total
    }
}

/// Which memory limit stopped a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemoryHit {
    /// The call's own cap.
    Cap,
    /// The budget shared by all calls.
    Budget,
}

/// One call's memory: its cap, what it reserved from the budget, and which
/// limit it hit, so the resulting trap is reported as that limit rather than
/// a generic trap.
#[derive(Debug)]
pub(crate) struct MemoryCap {
    pub(crate) limit: usize,
    pub(crate) hit: Option<MemoryHit>,
    budget: Arc<MemoryBudget>,
    reserved: usize,
}

impl MemoryCap {
    pub(crate) fn new(limit: usize, budget: Arc<MemoryBudget>) -> Self {
        MemoryCap {
            limit,
            hit: None,
            budget,
            reserved: 0,
        }
    }

    /// The shared budget this call draws from.
    pub(crate) fn budget(&self) -> &MemoryBudget {
        &self.budget
    }
}

impl Drop for MemoryCap {
    fn drop(&mut self) {
        self.budget.release(self.reserved);
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = Some(MemoryHit::Cap);
            return Ok(false);
        }
        let more = desired.saturating_sub(current);
        if !self.budget.reserve(more, self.reserved + more) {
            self.hit = Some(MemoryHit::Budget);
            return Ok(false);
        }
        self.reserved += more;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.hit.get_or_insert(MemoryHit::Cap);
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_draws_on_the_shared_budget_and_returns_it() {
        let budget = MemoryBudget::new(100);
        let mut a = MemoryCap::new(80, budget.clone());
        let mut b = MemoryCap::new(80, budget.clone());
        assert!(a.memory_growing(0, 60, None).unwrap());
        assert!(!b.memory_growing(0, 60, None).unwrap());
        assert_eq!(b.hit, Some(MemoryHit::Budget));
        assert!(!a.memory_growing(60, 90, None).unwrap());
        assert_eq!(a.hit, Some(MemoryHit::Cap));
        drop(a);
        assert_eq!(budget.used(), 0);
        let mut c = MemoryCap::new(80, budget.clone());
        assert!(c.memory_growing(0, 60, None).unwrap());
        assert_eq!(budget.used(), 60);
    }

    #[test]
    fn the_last_sixteenth_is_kept_for_small_calls() {
        let total = 160 << 20;
        let budget = MemoryBudget::new(total);
        let mut big = MemoryCap::new(total, budget.clone());
        assert!(big.memory_growing(0, 150 << 20, None).unwrap());
        assert!(!big.memory_growing(150 << 20, 151 << 20, None).unwrap());
        assert_eq!(big.hit, Some(MemoryHit::Budget));
        let mut small = MemoryCap::new(total, budget.clone());
        assert!(
            small.memory_growing(0, 2 << 20, None).unwrap(),
            "a small call still starts"
        );
    }
}
