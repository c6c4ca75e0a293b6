//! The world server's pure core: zone nodes, cell leases and routing, advanced by calls that
//! carry the time (milliseconds on the caller's monotonic clock). No IO: the shell persists
//! what [`WorldCore::poll`] grants before anyone hears of it, and answers nodes and gateways
//! from here.
//!
//! Rules:
//! - `[world-1]` every leaf cell has at most one lease, and a lease names one node and an epoch
//!   that only grows: a new grant for a cell always takes an epoch above every earlier one;
//! - `[world-2]` a lease lasts `lease_ms` from the last heartbeat of its node that renewed it;
//!   a cell is granted again only after its lease expired plus `reassign_margin_ms`, so the old
//!   holder (which stops serving at its own, earlier, deadline: `crate::lease`) has stopped
//!   before the new holder starts;
//! - `[world-3]` a grant is reported to nodes and used for routing only once the shell has
//!   written it to the store ([`WorldCore::confirm`]): the store's lease record is the fence;
//! - `[world-4]` cells are first assigned once `nodes_expected` nodes registered or
//!   `settle_ms` passed since the first did (after that, cells of nodes that died are granted
//!   to the living however few they are), spread over live nodes by cells per unit of
//!   capacity (ties to the lowest node id), so a world started with four nodes gets one cell
//!   on each;
//! - `[world-5]` a node is live while heard from within `lease_ms`; a node that is not live
//!   gets no new cells, and one that was never registered gets no answer but "register".

use crate::quadtree::Quadtree;
use pwn_store::keys::CellKey;
use std::collections::BTreeMap;

/// A zone node's id: allocated by the world server when the node registers, never reused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ZoneId(pub u64);

impl std::fmt::Display for ZoneId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "z{}", self.0)
    }
}

/// A lease epoch: grows with every grant of a cell; every write for the cell is fenced by it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch(pub u64);

/// Timing and placement settings of the world server.
#[derive(Clone, Debug, PartialEq)]
pub struct WorldConfig {
    /// How long a lease lasts after the heartbeat that renewed it.
    pub lease_ms: u64,
    /// Extra wait after a lease expired before its cell is granted again (`[world-2]`).
    pub reassign_margin_ms: u64,
    /// Cells are first assigned once this many nodes registered (`[world-4]`).
    pub nodes_expected: u32,
    /// ... or once this long passed since the first node registered.
    pub settle_ms: u64,
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self { lease_ms: 3_000, reassign_margin_ms: 1_000, nodes_expected: 1, settle_ms: 2_000 }
    }
}

/// What a node reports about itself every second.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct Load {
    /// Players it serves.
    pub players: u32,
    /// Entities it simulates (players included).
    pub entities: u32,
    /// Its tick time p99 over the last second.
    pub tick_ms_p99: f32,
    /// Bytes it sent over the last second.
    pub bytes_out_per_s: u64,
}

/// A registered zone node.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Its id.
    pub id: ZoneId,
    /// Where gateways and other zones reach it.
    pub addr: String,
    /// Relative capacity (cells are spread in proportion).
    pub capacity: u32,
    /// When it was last heard from.
    pub last_heard_ms: u64,
    /// Its last load report.
    pub load: Load,
}

/// A cell's lease.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The cell.
    pub cell: CellKey,
    /// The node holding it.
    pub node: ZoneId,
    /// Its epoch.
    pub epoch: Epoch,
    /// When it lapses unless renewed.
    pub expires_ms: u64,
    /// Whether the store holds it (`[world-3]`).
    pub durable: bool,
}

/// A new lease the shell must write to the store, then [`WorldCore::confirm`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The cell.
    pub cell: CellKey,
    /// The node it goes to.
    pub node: ZoneId,
    /// The new epoch (above every earlier one of the cell).
    pub epoch: Epoch,
    /// The epoch the store should hold now (the previous grant), if any.
    pub previous: Option<Epoch>,
}

/// Who serves a cell, as nodes and gateways are told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellOwner {
    /// The cell.
    pub cell: CellKey,
    /// The node.
    pub node: ZoneId,
    /// The node's address.
    pub addr: String,
    /// The lease epoch.
    pub epoch: Epoch,
}

/// A lease as its holder is told of it: valid for `valid_for_ms` from when the holder sent the
/// heartbeat this answers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HeldLease {
    /// The cell.
    pub cell: CellKey,
    /// The epoch.
    pub epoch: Epoch,
    /// How long it lasts from the heartbeat's sending.
    pub valid_for_ms: u64,
}

/// Why the core refused a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    /// A node the world server does not know (it must register).
    #[error("unknown node {0}; register first")]
    UnknownNode(ZoneId),
    /// A node id registered twice.
    #[error("node {0} is registered already")]
    Duplicate(ZoneId),
}

/// The world server's state: the tree, the nodes and the leases.
#[derive(Clone, Debug)]
pub struct WorldCore {
    cfg: WorldConfig,
    tree: Quadtree,
    nodes: BTreeMap<ZoneId, Node>,
    leases: BTreeMap<CellKey, Lease>,
    /// The highest epoch ever granted per cell (also for grants that failed to persist, whose
    /// epoch the store may or may not hold).
    epochs: BTreeMap<CellKey, Epoch>,
    first_registered_ms: Option<u64>,
    /// Cells were assigned once: the wait for the expected nodes is over for good (`[world-4]`).
    settled: bool,
}

impl WorldCore {
    /// A world with no nodes or leases yet.
    pub fn new(cfg: WorldConfig, tree: Quadtree) -> Self {
        Self {
            cfg,
            tree,
            nodes: BTreeMap::new(),
            leases: BTreeMap::new(),
            epochs: BTreeMap::new(),
            first_registered_ms: None,
            settled: false,
        }
    }

    /// A world as the store left it (a restart): every stored lease is renewed from `now_ms`, so a
    /// restart moves no cell (nodes that are gone lose theirs the usual way, `[world-2]`).
    pub fn restore(
        cfg: WorldConfig,
        tree: Quadtree,
        nodes: impl IntoIterator<Item = (ZoneId, String, u32)>,
        leases: impl IntoIterator<Item = (CellKey, ZoneId, Epoch)>,
        now_ms: u64,
    ) -> Self {
        let mut core = Self::new(cfg, tree);
        for (id, addr, capacity) in nodes {
            core.nodes
                .insert(id, Node { id, addr, capacity: capacity.max(1), last_heard_ms: now_ms, load: Load::default() });
            core.first_registered_ms.get_or_insert(now_ms);
        }
        for (cell, node, epoch) in leases {
            core.settled = true;
            core.epochs.insert(cell, epoch);
            if core.tree.is_leaf(cell) && core.nodes.contains_key(&node) {
                let expires_ms = now_ms + core.cfg.lease_ms;
                core.leases.insert(cell, Lease { cell, node, epoch, expires_ms, durable: true });
            }
        }
        core
    }

    /// The settings.
    pub fn config(&self) -> &WorldConfig {
        &self.cfg
    }

    /// The cells.
    pub fn tree(&self) -> &Quadtree {
        &self.tree
    }

    /// The registered nodes.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// Every lease, durable or not.
    pub fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.leases.values()
    }

    /// Adds a node (its id allocated by the shell from the store).
    pub fn register(&mut self, id: ZoneId, addr: String, capacity: u32, now_ms: u64) -> Result<(), WorldError> {
        if self.nodes.contains_key(&id) {
            return Err(WorldError::Duplicate(id));
        }
        self.nodes
            .insert(id, Node { id, addr, capacity: capacity.max(1), last_heard_ms: now_ms, load: Load::default() });
        self.first_registered_ms.get_or_insert(now_ms);
        Ok(())
    }

    fn live(&self, node: &Node, now_ms: u64) -> bool {
        now_ms <= node.last_heard_ms + self.cfg.lease_ms
    }

    /// A node's heartbeat with its load: renews its unexpired leases (`[world-2]`) and returns
    /// the durable ones it holds.
    pub fn heartbeat(&mut self, id: ZoneId, load: Load, now_ms: u64) -> Result<Vec<HeldLease>, WorldError> {
        let node = self.nodes.get_mut(&id).ok_or(WorldError::UnknownNode(id))?;
        node.last_heard_ms = now_ms;
        node.load = load;
        let lease_ms = self.cfg.lease_ms;
        let mut held = Vec::new();
        for lease in self.leases.values_mut().filter(|l| l.node == id && now_ms < l.expires_ms) {
            lease.expires_ms = now_ms + lease_ms;
            if lease.durable {
                held.push(HeldLease { cell: lease.cell, epoch: lease.epoch, valid_for_ms: lease_ms });
            }
        }
        Ok(held)
    }

    /// Grants the cells that need an owner (never leased, or expired plus the margin) to live
    /// nodes (`[world-4]`). The shell writes each grant to the store and confirms it.
    pub fn poll(&mut self, now_ms: u64) -> Vec<Grant> {
        let live = self.nodes.values().filter(|n| self.live(n, now_ms)).count();
        let settled = self.settled
            || live as u32 >= self.cfg.nodes_expected.max(1)
            || self.first_registered_ms.is_some_and(|t| now_ms >= t + self.cfg.settle_ms);
        if live == 0 || !settled {
            return Vec::new();
        }
        self.settled = true;
        let orphans: Vec<CellKey> = self
            .tree
            .leaves()
            .filter(|c| match self.leases.get(c) {
                None => true,
                Some(l) => now_ms >= l.expires_ms + self.cfg.reassign_margin_ms,
            })
            .collect();
        let mut grants = Vec::with_capacity(orphans.len());
        for cell in orphans {
            let Some(node) = self.least_loaded(now_ms, cell) else { break };
            let previous = self.epochs.get(&cell).copied();
            let epoch = Epoch(previous.map_or(1, |e| e.0 + 1));
            self.epochs.insert(cell, epoch);
            let expires_ms = now_ms + self.cfg.lease_ms;
            self.leases.insert(cell, Lease { cell, node, epoch, expires_ms, durable: false });
            grants.push(Grant { cell, node, epoch, previous });
        }
        grants
    }

    /// The live node with the fewest cells per unit of capacity, not counting `cell` itself.
    fn least_loaded(&self, now_ms: u64, cell: CellKey) -> Option<ZoneId> {
        self.nodes
            .values()
            .filter(|n| self.live(n, now_ms))
            .min_by(|a, b| {
                let share = |n: &Node| {
                    let held = self.leases.values().filter(|l| l.node == n.id && l.cell != cell).count();
                    held as f64 / f64::from(n.capacity)
                };
                share(a).total_cmp(&share(b)).then(a.id.cmp(&b.id))
            })
            .map(|n| n.id)
    }

    /// The shell wrote `grant` to the store: it is now reported and routed to (`[world-3]`).
    pub fn confirm(&mut self, grant: &Grant) {
        if let Some(l) = self.leases.get_mut(&grant.cell)
            && l.epoch == grant.epoch
        {
            l.durable = true;
        }
    }

    /// The shell could not write `grant`: the cell is free again (its epoch stays used).
    pub fn abandon(&mut self, grant: &Grant) {
        if self.leases.get(&grant.cell).is_some_and(|l| l.epoch == grant.epoch && !l.durable) {
            self.leases.remove(&grant.cell);
        }
    }

    /// Who serves each cell now: durable, unexpired leases of known nodes.
    pub fn owners(&self, now_ms: u64) -> Vec<CellOwner> {
        self.leases.values().filter(|l| l.durable && now_ms < l.expires_ms).filter_map(|l| self.owner(l)).collect()
    }

    fn owner(&self, l: &Lease) -> Option<CellOwner> {
        let n = self.nodes.get(&l.node)?;
        Some(CellOwner { cell: l.cell, node: l.node, addr: n.addr.clone(), epoch: l.epoch })
    }

    /// Where a player at `(x, z)` belongs: the owner of the leaf holding it, if the leaf is
    /// served now.
    pub fn route(&self, x: f32, z: f32, now_ms: u64) -> Option<CellOwner> {
        let cell = self.tree.leaf_at(x, z);
        self.leases.get(&cell).filter(|l| l.durable && now_ms < l.expires_ms).and_then(|l| self.owner(l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tree() -> Quadtree {
        Quadtree::uniform([-512.0, -512.0], [1024.0, 1024.0], 1).unwrap()
    }

    fn confirm_all(core: &mut WorldCore, now: u64) -> Vec<Grant> {
        let grants = core.poll(now);
        for g in &grants {
            core.confirm(g);
        }
        grants
    }

    #[test]
    fn four_nodes_get_one_cell_each_once_all_registered() {
        let mut core = WorldCore::new(WorldConfig { nodes_expected: 4, ..WorldConfig::default() }, tree());
        for i in 1..=3 {
            core.register(ZoneId(i), format!("127.0.0.1:{i}"), 1, 0).unwrap();
            assert!(core.poll(0).is_empty(), "assigned before the expected nodes registered");
        }
        core.register(ZoneId(4), "127.0.0.1:4".into(), 1, 10).unwrap();
        let grants = confirm_all(&mut core, 10);
        assert_eq!(grants.len(), 4);
        let mut nodes: Vec<u64> = grants.iter().map(|g| g.node.0).collect();
        nodes.sort_unstable();
        assert_eq!(nodes, vec![1, 2, 3, 4]);
        assert!(grants.iter().all(|g| g.epoch == Epoch(1) && g.previous.is_none()));
        assert_eq!(core.route(100.0, 100.0, 20).map(|o| o.epoch), Some(Epoch(1)));
    }

    #[test]
    fn world_4_once_assigned_a_dead_nodes_cells_go_to_the_living_however_few() {
        let cfg = WorldConfig { nodes_expected: 2, settle_ms: 60_000, ..WorldConfig::default() };
        let mut core = WorldCore::new(cfg.clone(), tree());
        core.register(ZoneId(1), "a".into(), 1, 0).unwrap();
        core.register(ZoneId(2), "b".into(), 1, 0).unwrap();
        assert_eq!(confirm_all(&mut core, 0).len(), 4);
        // Node 1 dies; node 2 alone is fewer than expected, and still takes its cells.
        let t = cfg.lease_ms + cfg.reassign_margin_ms;
        for beat in (0..=t).step_by(500) {
            core.heartbeat(ZoneId(2), Load::default(), beat).unwrap();
        }
        let grants = confirm_all(&mut core, t);
        assert_eq!(grants.len(), 2);
        assert!(grants.iter().all(|g| g.node == ZoneId(2)));
    }

    #[test]
    fn settle_time_assigns_with_fewer_nodes() {
        let mut core =
            WorldCore::new(WorldConfig { nodes_expected: 4, settle_ms: 500, ..WorldConfig::default() }, tree());
        core.register(ZoneId(1), "a".into(), 1, 0).unwrap();
        assert!(core.poll(499).is_empty());
        // Heartbeats keep the node live until the settle time.
        core.heartbeat(ZoneId(1), Load::default(), 499).unwrap();
        assert_eq!(confirm_all(&mut core, 500).len(), 4);
    }

    #[test]
    fn unconfirmed_grants_are_neither_reported_nor_routed() {
        let mut core = WorldCore::new(WorldConfig::default(), tree());
        core.register(ZoneId(1), "a".into(), 1, 0).unwrap();
        let grants = core.poll(0);
        assert_eq!(grants.len(), 4);
        assert!(core.heartbeat(ZoneId(1), Load::default(), 1).unwrap().is_empty());
        assert!(core.route(0.0, 0.0, 1).is_none());
        core.abandon(&grants[0]);
        for g in &grants[1..] {
            core.confirm(g);
        }
        assert_eq!(core.heartbeat(ZoneId(1), Load::default(), 2).unwrap().len(), 3);
        // The abandoned cell is granted again with a new epoch.
        let again = core.poll(3);
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].cell, again[0].epoch, again[0].previous), (grants[0].cell, Epoch(2), Some(Epoch(1))));
    }

    #[test]
    fn a_silent_node_loses_its_cells_only_after_expiry_and_margin() {
        let cfg = WorldConfig::default();
        let mut core = WorldCore::new(cfg.clone(), tree());
        core.register(ZoneId(1), "a".into(), 1, 0).unwrap();
        core.register(ZoneId(2), "b".into(), 1, 0).unwrap();
        confirm_all(&mut core, 0);
        let held_by_1: Vec<CellKey> = core.leases().filter(|l| l.node == ZoneId(1)).map(|l| l.cell).collect();
        assert_eq!(held_by_1.len(), 2);
        // Node 2 keeps beating; node 1 falls silent at 0.
        let mut t = 0;
        while t < cfg.lease_ms + cfg.reassign_margin_ms {
            t += 500;
            core.heartbeat(ZoneId(2), Load::default(), t).unwrap();
            let grants = core.poll(t);
            if t < cfg.lease_ms + cfg.reassign_margin_ms {
                assert!(grants.is_empty(), "reassigned at {t} ms");
            } else {
                assert_eq!(grants.len(), 2);
                assert!(grants.iter().all(|g| g.node == ZoneId(2) && g.epoch == Epoch(2)));
            }
        }
        // Node 1 comes back late: it holds nothing any more.
        assert!(core.heartbeat(ZoneId(1), Load::default(), t + 1).unwrap().is_empty());
        assert!(matches!(core.heartbeat(ZoneId(9), Load::default(), t), Err(WorldError::UnknownNode(_))));
    }

    #[test]
    fn a_restart_keeps_every_lease_and_epoch() {
        let mut core = WorldCore::new(WorldConfig::default(), tree());
        core.register(ZoneId(1), "a".into(), 1, 0).unwrap();
        confirm_all(&mut core, 0);
        let nodes = core.nodes().map(|n| (n.id, n.addr.clone(), n.capacity)).collect::<Vec<_>>();
        let leases = core.leases().map(|l| (l.cell, l.node, l.epoch)).collect::<Vec<_>>();
        let mut back = WorldCore::restore(WorldConfig::default(), tree(), nodes, leases, 50_000);
        assert!(back.poll(50_000).is_empty());
        assert_eq!(back.heartbeat(ZoneId(1), Load::default(), 50_001).unwrap().len(), 4);
    }

    proptest! {
        /// `[world-1]`, `[world-2]`: under any schedule of registrations, heartbeats, failed
        /// writes and silences, a cell has at most one lease, epochs only grow, and no cell is
        /// granted while an earlier lease of it is unexpired.
        #[test]
        fn leases_are_exclusive_and_epochs_grow(ops in proptest::collection::vec((0u8..4, 0u64..6, 1u64..800), 1..200)) {
            let mut core = WorldCore::new(WorldConfig { nodes_expected: 2, ..WorldConfig::default() }, tree());
            let mut now = 0u64;
            let mut next_id = 1u64;
            let mut last: BTreeMap<CellKey, (Epoch, u64)> = BTreeMap::new();
            for (op, node, dt) in ops {
                now += dt;
                match op {
                    0 if next_id < 6 => { core.register(ZoneId(next_id), String::new(), 1, now).unwrap(); next_id += 1; }
                    1 | 0 => { let _ = core.heartbeat(ZoneId(node), Load::default(), now); }
                    _ => {
                        for (i, g) in core.poll(now).into_iter().enumerate() {
                            if let Some((e, expires)) = last.get(&g.cell) {
                                prop_assert!(g.epoch > *e);
                                prop_assert!(now >= *expires + core.config().reassign_margin_ms);
                            }
                            if (i + node as usize).is_multiple_of(5) { core.abandon(&g) } else { core.confirm(&g) }
                        }
                    }
                }
                for l in core.leases() {
                    last.insert(l.cell, (l.epoch, l.expires_ms));
                }
            }
        }
    }
}
