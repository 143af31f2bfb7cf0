//! The deliveries a SQLite store's dispatcher has claimed and not yet
//! finished, kept in memory.
//!
//! One process works a SQLite file, so this set is the first lease table a
//! claim checks: a claim reads what is due on a reader connection, holds it
//! here at once, and its lease rows are written behind it, ahead of any
//! later write about them. A held delivery stays held until its attempt's
//! result is committed, so neither a lease not yet written nor one that ran
//! out lets a second attempt start beside it.
//!
//! A claim's read may still show a delivery as it was before its result was
//! committed, when the result lands and the delivery is let go while the
//! read runs. So each release is numbered, and a claim passes over what was
//! let go after its read began. No lock is held while a claim reads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use super::StoreResult;

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Held(Mutex<State>);

#[derive(Default)]
struct State {
    held: HashSet<String>,
    /// Releases so far: the number of the last one.
    releases: u64,
    /// Deliveries let go while a claim was reading, by release number.
    let_go: HashMap<String, u64>,
    /// Claims reading now, by the release number at which they began.
    reading: BTreeMap<u64, usize>,
}

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claim: `read` the due delivery ids, passing over those the
    /// predicate it is given says are taken, hold those nobody holds, and
    /// `load` them. Nothing stays held if either fails.
    pub(crate) fn take<T>(
        &self,
        read: impl FnOnce(&dyn Fn(&str) -> bool) -> StoreResult<Vec<String>>,
        load: impl FnOnce(&[String]) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let began = {
            let mut state = self.lock();
            let began = state.releases;
            *state.reading.entry(began).or_default() += 1;
            began
        };
        let read = read(&|id| self.lock().free(id, began));
        let ids = {
            let mut state = self.lock();
            // Filtered again, under the same lock as the hold: a claim
            // beside this one may have taken some meanwhile. Filtered
            // before `done_reading`, which may forget what was let go.
            let free = read.map(|ids| {
                ids.into_iter()
                    .filter(|id| state.free(id, began))
                    .collect::<Vec<String>>()
            });
            state.done_reading(began);
            let ids = free?;
            state.held.extend(ids.iter().cloned());
            ids
        };
        let loaded = load(&ids);
        if loaded.is_err() {
            self.release(&ids);
        }
        loaded
    }

    /// Whether delivery `id` is held.
    pub(crate) fn holds(&self, id: &str) -> bool {
        self.lock().held.contains(id)
    }

    /// Let `ids` go, once what ended their attempts is committed.
    pub(crate) fn release<'a>(&self, ids: impl IntoIterator<Item = &'a String>) {
        let mut state = self.lock();
        for id in ids {
            if state.held.remove(id) && !state.reading.is_empty() {
                state.releases += 1;
                let number = state.releases;
                state.let_go.insert(id.clone(), number);
            }
        }
    }
}

impl State {
    /// Whether a claim that began reading at release `began` may take
    /// delivery `id`: nobody holds it, and it was not let go since.
    fn free(&self, id: &str, began: u64) -> bool {
        !self.held.contains(id) && self.let_go.get(id).is_none_or(|&n| n <= began)
    }

    /// The claim that began reading at release `began` has read: what was
    /// let go before every claim still reading began is forgotten.
    fn done_reading(&mut self, began: u64) {
        if let Some(count) = self.reading.get_mut(&began) {
            *count -= 1;
            if *count == 0 {
                self.reading.remove(&began);
            }
        }
        match self.reading.keys().next().copied() {
            None => self.let_go.clear(),
            Some(oldest) => self.let_go.retain(|_, n| *n > oldest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_held_delivery_is_not_taken_twice() {
        let held = Held::default();
        let first = held.take(|_| Ok(ids(&["a", "b"])), |ids| Ok(ids.to_vec()));
        assert_eq!(first.unwrap(), ids(&["a", "b"]));
        let second = held.take(|_| Ok(ids(&["a", "b", "c"])), |ids| Ok(ids.to_vec()));
        assert_eq!(second.unwrap(), ids(&["c"]));
        held.release(&ids(&["a"]));
        let third = held.take(|_| Ok(ids(&["a"])), |ids| Ok(ids.to_vec()));
        assert_eq!(third.unwrap(), ids(&["a"]), "let go before the read began");
    }

    #[test]
    fn what_is_let_go_during_a_read_is_passed_over() {
        let held = Held::default();
        held.take(|_| Ok(ids(&["a"])), |ids| Ok(ids.to_vec()))
            .unwrap();
        // The read sees `a` as it was before its result was committed.
        let taken = held.take(
            |_| {
                held.release(&ids(&["a"]));
                Ok(ids(&["a", "b"]))
            },
            |ids| Ok(ids.to_vec()),
        );
        assert_eq!(taken.unwrap(), ids(&["b"]));
        assert!(
            held.lock().let_go.is_empty(),
            "forgotten once no read is on"
        );
        let later = held.take(|_| Ok(ids(&["a"])), |ids| Ok(ids.to_vec()));
        assert_eq!(later.unwrap(), ids(&["a"]));
    }

    #[test]
    fn the_read_is_told_what_it_must_pass_over() {
        let held = Held::default();
        held.take(|_| Ok(ids(&["a", "b"])), |ids| Ok(ids.to_vec()))
            .unwrap();
        let taken = held.take(
            |free| {
                held.release(&ids(&["b"]));
                assert!(!free("a"), "held");
                assert!(!free("b"), "let go during this read");
                assert!(free("c"));
                Ok(ids(&["c"]))
            },
            |ids| Ok(ids.to_vec()),
        );
        assert_eq!(taken.unwrap(), ids(&["c"]));
    }

    #[test]
    fn a_failed_load_holds_nothing() {
        let held = Held::default();
        let failed: StoreResult<()> = held.take(
            |_| Ok(ids(&["a"])),
            |_| Err(super::super::StoreError::Database("no".into())),
        );
        assert!(failed.is_err());
        assert!(!held.holds("a"));
    }
}
