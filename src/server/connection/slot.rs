//! A connection's place under `--max-clients`, as a value.
//!
//! The count of clients is shared (an atomic in the iterative model, the
//! log's per-cell counters in the pools) and a connection gives its place
//! back at one of several moments: when it starts lingering (gone as far as
//! its client can tell), when it is removed, at shutdown. Adjusting the
//! count by hand at each of those sites is how a place leaks or is given
//! back twice; a [`ClientSlot`] gives it back exactly once, when released
//! or dropped, whichever comes first.

/// A shared count of clients.
pub(crate) trait ClientCount {
    /// Counts one more client unless there are `max` already.
    fn try_add(&self, max: usize) -> bool;
    fn remove(&self);
}

/// One client's place in a [`ClientCount`].
pub(crate) struct ClientSlot<C: ClientCount> {
    count: Option<C>,
}

impl<C: ClientCount> ClientSlot<C> {
    /// Takes a place, unless the server is full.
    pub(crate) fn try_take(count: C, max: usize) -> Option<Self> {
        // Lazily: a slot made and dropped on refusal would give back a place
        // it never took.
        count.try_add(max).then(|| ClientSlot { count: Some(count) })
    }

    /// Gives the place back now (later calls, and the drop, do nothing).
    pub(crate) fn release(&mut self) {
        if let Some(count) = self.count.take() {
            count.remove();
        }
    }
}

impl<C: ClientCount> Drop for ClientSlot<C> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    impl ClientCount for &Cell<usize> {
        fn try_add(&self, max: usize) -> bool {
            if self.get() >= max {
                return false;
            }
            self.set(self.get() + 1);
            true
        }

        fn remove(&self) {
            self.set(self.get() - 1);
        }
    }

    #[test]
    fn a_place_is_given_back_exactly_once() {
        let count = Cell::new(0);
        let mut a = ClientSlot::try_take(&count, 2).expect("room");
        let b = ClientSlot::try_take(&count, 2).expect("room");
        assert!(ClientSlot::try_take(&count, 2).is_none(), "full");
        assert_eq!(count.get(), 2);
        a.release();
        a.release();
        assert_eq!(count.get(), 1);
        drop(a);
        assert_eq!(count.get(), 1);
        drop(b);
        assert_eq!(count.get(), 0);
    }
}
