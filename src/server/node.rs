//! Which node of a cluster this server is, as its connection ids carry
//! it: the node's number and its epoch (see `chat::ConnId`).
//!
//! Connection ids are the directory's keys for users on every node, so
//! two nodes must never make the same one, and a node that restarts must
//! not make one its previous run made (that run's users may still be in
//! the directory until the network has declared them lost). The node's
//! number sets its range of worker numbers and its epoch, new at every
//! start, the high half of every generation. Alone, both are 0 and ids are
//! exactly what the models always made.

use crate::chat::ConnId;
use crate::server::pool::log::{CellId, MAX_CELLS};

/// This server's place in the network's numbering of connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeSpace {
    /// The node's number (1 or more in a cluster, 0 alone).
    pub node: u16,
    /// This run of the node (0 alone).
    pub epoch: u32,
}

impl NodeSpace {
    /// A server on its own: the numbering the models have always used.
    pub const ALONE: NodeSpace = NodeSpace { node: 0, epoch: 0 };

    /// Whether this server is a node of a cluster.
    pub fn clustered(self) -> bool {
        self != NodeSpace::ALONE
    }

    /// The worker number connections accepted by `cell` carry.
    pub fn worker(self, cell: CellId) -> u16 {
        self.node * ConnId::CELLS_PER_NODE + cell.as_u16()
    }

    /// The generation connections of `cell` carry while the cell has
    /// `cell_generation` (a cell's generation fills the low half in a
    /// cluster, so a cell may be replaced 65535 times per node run).
    pub fn generation(self, cell_generation: u32) -> u32 {
        if self.clustered() { self.epoch << 16 | (cell_generation & 0xffff) } else { cell_generation }
    }

    /// The local cell that accepted `conn`, if this node run did.
    pub fn cell_of(self, conn: ConnId) -> Option<CellId> {
        let local = conn.node() == self.node && (!self.clustered() || conn.epoch() == self.epoch);
        let index = usize::from(conn.worker % ConnId::CELLS_PER_NODE);
        (local && (1..MAX_CELLS).contains(&index)).then(|| CellId::worker(index))
    }

    /// The cell generation that `cell_of`'s cell had when it accepted
    /// `conn` (the inverse of [`generation`](Self::generation)).
    pub fn cell_generation(self, conn: ConnId) -> u32 {
        if self.clustered() { conn.generation & 0xffff } else { conn.generation }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alone_the_numbers_are_the_cells() {
        let alone = NodeSpace::ALONE;
        let cell = CellId::worker(3);
        assert_eq!(alone.worker(cell), 3);
        assert_eq!(alone.generation(70_000), 70_000);
        let conn = ConnId { worker: 3, slot: 1, generation: 70_000 };
        assert_eq!(alone.cell_of(conn), Some(cell));
        assert_eq!(alone.cell_generation(conn), 70_000);
        assert!(!alone.clustered());
    }

    #[test]
    fn nodes_and_their_runs_never_share_an_id() {
        let (a, b) = (NodeSpace { node: 1, epoch: 7 }, NodeSpace { node: 2, epoch: 7 });
        let a_again = NodeSpace { node: 1, epoch: 8 };
        let cell = CellId::worker(64);
        let id = |space: NodeSpace| ConnId {
            worker: space.worker(cell),
            slot: 0,
            generation: space.generation(1),
        };
        assert_ne!(id(a), id(b));
        assert_ne!(id(a), id(a_again));
        assert_eq!((id(a).node(), id(a).epoch()), (1, 7));
        assert_eq!(a.cell_of(id(a)), Some(cell));
        assert_eq!(a.cell_of(id(b)), None, "another node's");
        assert_eq!(a.cell_of(id(a_again)), None, "another run's");
        assert_eq!(a.cell_generation(id(a)), 1);
    }
}
