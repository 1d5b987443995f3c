//! Which participant of the log: the keeper (cell 0) or worker 1 to 64.
//!
//! A cell is an index into the log's header, a worker's name in its
//! connection ids (`ConnId::worker`) and a slot in a model's per-worker
//! tables; as a type of its own it cannot be mixed up with a count, a slot
//! or a sequence number, and the conversions live here once.

use super::MAX_CELLS;

/// A participant in the log: the keeper (cell 0) or worker 1 to 64. A
/// worker's connection ids carry it (`ConnId::worker`), so that every
/// replica can tell whose connection a user is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellId(pub(super) u16);

impl CellId {
    /// Worker `n`, counting from 1 as `--workers` does.
    pub fn worker(n: usize) -> CellId {
        assert!((1..MAX_CELLS).contains(&n), "worker {n} is not a cell");
        CellId(n as u16)
    }

    /// Every worker cell.
    pub fn workers() -> impl Iterator<Item = CellId> {
        (1..MAX_CELLS as u16).map(CellId)
    }

    /// Its place among the cells (and among a model's per-cell tables).
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// What connection ids say for this cell.
    pub fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether `conn` was accepted by this cell's worker.
    pub fn accepted(self, conn: crate::chat::ConnId) -> bool {
        conn.worker == self.0
    }
}

impl std::fmt::Display for CellId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
