//! Interest management: which entities a player can see. Every entity within the interest
//! radius, or in a crowd only the nearest `cap` of them (by squared distance, then index), in
//! index order. Positions go into a uniform grid rebuilt each tick (a counting sort: cheaper
//! than keeping any structure up to date as everything moves); a player's query walks the
//! grid's cells in rings outwards from its own and stops as soon as no farther ring can hold
//! anything nearer than the `cap`-th nearest found so far, so a player in a crowd looks at a
//! few hundred entities instead of every one within the radius. The answer is exactly the
//! brute-force one (`nearest_linear`, tested against it).

/// Below this many entities a straight pass beats building the grid.
pub const GRID_MIN_ENTITIES: usize = 256;

/// Most cells a grid may have (its per-tick arrays stay under half a megabyte): a sparse world
/// gets larger cells (an 8 km world of 80 m interest: 40 m cells).
const CELLS_MAX: usize = 1 << 16;

/// A hit: an entity's index and its squared distance.
pub type Hit = (u32, f32);

/// Orders hits by squared distance, then index. Squared distances that pass the radius test
/// are never negative nor NaN, so their bits order as the numbers do, and one integer
/// comparison replaces a float comparison and a tie-break.
fn distance_key(h: &Hit) -> u64 {
    (u64::from(h.1.to_bits()) << 32) | u64::from(h.0)
}

fn d2(p: [f32; 2], me: [f32; 2]) -> f32 {
    (p[0] - me[0]) * (p[0] - me[0]) + (p[1] - me[1]) * (p[1] - me[1])
}

/// Keeps the `cap` nearest of `hits` (any order afterwards).
fn keep_nearest(hits: &mut Vec<Hit>, cap: usize) {
    if hits.len() > cap {
        hits.select_nth_unstable_by_key(cap - 1, distance_key);
        hits.truncate(cap);
    }
}

/// The reference: every position within `radius_m` of `me`, the nearest `cap` in a crowd, in
/// index order.
pub fn nearest_linear(positions: &[[f32; 2]], me: [f32; 2], radius_m: f32, cap: usize, out: &mut Vec<Hit>) {
    out.clear();
    let r2 = radius_m * radius_m;
    out.extend(positions.iter().enumerate().filter_map(|(i, p)| {
        let d = d2(*p, me);
        (d <= r2).then_some((i as u32, d))
    }));
    keep_nearest(out, cap.max(1));
    out.sort_unstable_by_key(|(i, _)| *i);
}

/// Positions bucketed by cell for one tick.
#[derive(Debug, Default)]
pub struct Grid {
    origin: [f32; 2],
    cell_m: f32,
    cols: i64,
    rows: i64,
    /// `starts[c]..starts[c + 1]` are cell `c`'s entries in `members`.
    starts: Vec<u32>,
    members: Vec<u32>,
}

impl Grid {
    /// Buckets `positions` into cells of an eighth of `radius_m` (larger if the area
    /// would need more than a million cells).
    pub fn build(positions: &[[f32; 2]], radius_m: f32) -> Self {
        let finite = positions.iter().filter(|p| p[0].is_finite() && p[1].is_finite());
        let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
        for p in finite {
            for a in 0..2 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
        // No grid (queries then scan): nothing finite, or a spread f32 cannot measure.
        if lo[0] > hi[0] || !(hi[0] - lo[0]).is_finite() || !(hi[1] - lo[1]).is_finite() {
            return Self::default();
        }
        let mut cell_m = (radius_m.abs() / 8.0).max(1.0);
        // Counted in f64, so that a wide spread cannot overflow before the cap is reached.
        let span = |cell: f32, a: usize| (f64::from(hi[a] - lo[a]) / f64::from(cell)).floor() + 1.0;
        while span(cell_m, 0) * span(cell_m, 1) > CELLS_MAX as f64 {
            cell_m *= 2.0;
        }
        let (cols, rows) = (span(cell_m, 0) as i64, span(cell_m, 1) as i64);
        let mut g =
            Self { origin: lo, cell_m, cols, rows, starts: vec![0; (cols * rows) as usize + 1], members: Vec::new() };
        let cells: Vec<Option<usize>> = positions.iter().map(|p| g.cell_of(*p)).collect();
        for c in cells.iter().flatten() {
            g.starts[c + 1] += 1;
        }
        for c in 1..g.starts.len() {
            g.starts[c] += g.starts[c - 1];
        }
        let mut fill = g.starts.clone();
        g.members = vec![0; g.starts[g.starts.len() - 1] as usize];
        for (i, c) in cells.iter().enumerate() {
            if let Some(c) = c {
                g.members[fill[*c] as usize] = i as u32;
                fill[*c] += 1;
            }
        }
        g
    }

    fn coords(&self, p: [f32; 2]) -> (i64, i64) {
        (((p[0] - self.origin[0]) / self.cell_m).floor() as i64, ((p[1] - self.origin[1]) / self.cell_m).floor() as i64)
    }

    fn cell_of(&self, p: [f32; 2]) -> Option<usize> {
        if !(p[0].is_finite() && p[1].is_finite()) {
            return None;
        }
        let (x, z) = self.coords(p);
        (x >= 0 && z >= 0 && x < self.cols && z < self.rows).then(|| (z * self.cols + x) as usize)
    }

    fn visit_cell(&self, x: i64, z: i64, positions: &[[f32; 2]], me: [f32; 2], r2: f32, out: &mut Vec<Hit>) {
        if x < 0 || z < 0 || x >= self.cols || z >= self.rows {
            return;
        }
        let c = (z * self.cols + x) as usize;
        for &i in &self.members[self.starts[c] as usize..self.starts[c + 1] as usize] {
            let d = d2(positions[i as usize], me);
            if d <= r2 {
                out.push((i, d));
            }
        }
    }

    /// As [`nearest_linear`] over the `positions` this grid was built from.
    pub fn nearest(&self, positions: &[[f32; 2]], me: [f32; 2], radius_m: f32, cap: usize, out: &mut Vec<Hit>) {
        out.clear();
        // No grid, a player nowhere, or a radius whose square reaches everything (even
        // positions that are not finite, which the grid does not hold): the scan answers.
        let everything = !(radius_m * radius_m).is_finite();
        if self.starts.len() < 2 || !(me[0].is_finite() && me[1].is_finite()) || everything {
            return nearest_linear(positions, me, radius_m, cap, out);
        }
        let cap = cap.max(1);
        let r2 = radius_m * radius_m;
        let (cx, cz) = self.coords(me);
        // The scan reads a negative radius by its square, so the rings do too.
        let rings = (radius_m.abs() / self.cell_m).ceil() as i64 + 1;
        // A player beyond every ring of the grid (its cell index may even saturate) is answered
        // by the scan, which is rare and keeps the ring arithmetic far from overflowing.
        let outside = |c: i64, n: i64| c < -rings || c >= n.saturating_add(rings);
        if outside(cx, self.cols) || outside(cz, self.rows) {
            return nearest_linear(positions, me, radius_m, cap, out);
        }
        for k in 0..=rings {
            if out.len() >= cap {
                // Only the nearest `cap` so far can still be among the nearest `cap` at the end.
                keep_nearest(out, cap);
                let farthest = out.iter().map(|h| h.1).fold(f32::MIN, f32::max);
                // Anything in ring `k` or beyond is at least `k - 1` cells away.
                let gap = (k - 1).max(0) as f32 * self.cell_m;
                if gap * gap > farthest {
                    break;
                }
            }
            if k == 0 {
                self.visit_cell(cx, cz, positions, me, r2, out);
                continue;
            }
            for x in (cx - k)..=(cx + k) {
                self.visit_cell(x, cz - k, positions, me, r2, out);
                self.visit_cell(x, cz + k, positions, me, r2, out);
            }
            for z in (cz - k + 1)..=(cz + k - 1) {
                self.visit_cell(cx - k, z, positions, me, r2, out);
                self.visit_cell(cx + k, z, positions, me, r2, out);
            }
        }
        keep_nearest(out, cap);
        out.sort_unstable_by_key(|(i, _)| *i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_grid_finds_exactly_what_a_linear_scan_finds(
            points in proptest::collection::vec((-300.0f32..300.0, -300.0f32..300.0), 0..700),
            crowd in proptest::collection::vec((-20.0f32..20.0, -20.0f32..20.0), 0..400),
            cx in -350.0f32..350.0, cz in -350.0f32..350.0, r in 0.0f32..200.0, cap in 1usize..200
        ) {
            let positions: Vec<[f32; 2]> = points.iter().chain(&crowd).map(|(x, z)| [*x, *z]).collect();
            let grid = Grid::build(&positions, r);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            nearest_linear(&positions, [cx, cz], r, cap, &mut a);
            grid.nearest(&positions, [cx, cz], r, cap, &mut b);
            prop_assert_eq!(a, b);
        }
    }

    /// Inputs the zone never makes today (its positions are inside the world, its radius
    /// positive), kept exact so that a change elsewhere cannot turn them into a panic or a
    /// different answer: a player far outside the grid, a spread too wide to count cells in,
    /// a negative, zero or infinite radius, positions that are not finite, one crowded cell.
    #[test]
    fn the_grid_answers_as_the_scan_does_at_the_extremes() {
        let line: Vec<[f32; 2]> = (0..300).map(|i| [i as f32, 0.0]).collect();
        let mut wide = line.clone();
        wide.extend([[3e38, 3e38], [-3e38, -3e38], [1e10, -1e10]]);
        let mut odd = line.clone();
        odd.extend([[f32::INFINITY, 0.0], [f32::NAN, 1.0], [0.0, f32::NEG_INFINITY]]);
        let crowd = vec![[7.0f32, 7.0]; 400];
        // (positions, the player, the radius)
        type Case<'a> = (&'a [[f32; 2]], [f32; 2], f32);
        let cases: [Case; 10] = [
            (&line, [1e30, 0.0], 10.0),
            (&line, [-1e30, -1e30], 1e31),
            (&line, [0.0, 9.3e18], 10.0),
            (&wide, [0.0, 0.0], 10.0),
            (&wide, [3e38, 3e38], 10.0),
            (&line, [5.0, 0.0], -10.0),
            (&line, [5.0, 0.0], 0.0),
            (&odd, [0.0, 0.0], f32::INFINITY),
            (&odd, [3.0, 0.0], 5.0),
            (&crowd, [7.0, 7.0], 0.0),
        ];
        for (positions, me, r) in cases {
            let grid = Grid::build(positions, r);
            for cap in [1, 128, 1_000] {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                nearest_linear(positions, me, r, cap, &mut a);
                grid.nearest(positions, me, r, cap, &mut b);
                assert_eq!(a, b, "me {me:?}, radius {r}, cap {cap}");
            }
        }
    }

    #[test]
    fn ties_and_duplicates_resolve_as_the_scan_does() {
        // Many entities at the very same spot and on a ring: the index breaks ties.
        let mut positions = vec![[5.0f32, 5.0]; 300];
        positions.extend((0..300).map(|i| {
            let a = i as f32 * 0.1;
            [5.0 + 10.0 * a.cos(), 5.0 + 10.0 * a.sin()]
        }));
        let grid = Grid::build(&positions, 80.0);
        for cap in [1, 128, 299, 300, 301, 600] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            nearest_linear(&positions, [5.0, 5.0], 80.0, cap, &mut a);
            grid.nearest(&positions, [5.0, 5.0], 80.0, cap, &mut b);
            assert_eq!(a, b, "cap {cap}");
        }
    }
}
