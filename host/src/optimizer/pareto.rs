//! The Pareto front over the front rows, as GEPA keeps it: a candidate is on the front when it
//! has the best score of all accepted candidates on at least one row and no other candidate is
//! at least as good on every row and better on one. Parents are drawn from the front, each with
//! a weight of the rows it is best on, so a candidate that alone solves some rows keeps being
//! improved even when another has the better mean.

use rand::Rng;
use uuid::Uuid;

use super::state::Candidate;

/// Scores compared as equal below this difference.
const EPSILON: f64 = 1e-9;

/// The front: `(candidate index, rows it is best on)`, in candidate order.
pub fn front(candidates: &[Candidate], rows: &[Uuid]) -> Vec<(usize, usize)> {
    let accepted: Vec<&Candidate> = candidates.iter().filter(|c| c.accepted).collect();
    let score = |c: &Candidate, row: &Uuid| c.train.get(row).map_or(0.0, |s| s.score);
    let mut wins = vec![0usize; accepted.len()];
    for row in rows {
        let best = accepted
            .iter()
            .map(|c| score(c, row))
            .fold(f64::NEG_INFINITY, f64::max);
        for (i, c) in accepted.iter().enumerate() {
            if score(c, row) >= best - EPSILON {
                wins[i] += 1;
            }
        }
    }
    let dominated = |i: usize| {
        accepted.iter().enumerate().any(|(j, other)| {
            j != i
                && rows
                    .iter()
                    .all(|r| score(other, r) >= score(accepted[i], r) - EPSILON)
                && rows
                    .iter()
                    .any(|r| score(other, r) > score(accepted[i], r) + EPSILON)
        })
    };
    accepted
        .iter()
        .enumerate()
        .filter(|(i, _)| wins[*i] > 0 && !dominated(*i))
        .map(|(i, c)| (c.id, wins[i]))
        .collect()
}

/// A parent drawn from the front, weighted by the rows each is best on; the start when the
/// front is empty (no row scored yet).
pub fn pick_parent(front: &[(usize, usize)], rng: &mut impl Rng) -> usize {
    let total: usize = front.iter().map(|(_, w)| *w).sum();
    if total == 0 {
        return front.first().map_or(0, |(id, _)| *id);
    }
    let mut draw = rng.random_range(0..total);
    for (id, weight) in front {
        if draw < *weight {
            return *id;
        }
        draw -= weight;
    }
    front[front.len() - 1].0
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::SeedableRng;

    use super::*;
    use crate::optimizer::state::RowScore;

    fn candidate(id: usize, scores: &[f64], rows: &[Uuid]) -> Candidate {
        Candidate {
            id,
            text: format!("c{id}"),
            parent: None,
            round: 0,
            accepted: true,
            trial: None,
            train: rows
                .iter()
                .zip(scores)
                .map(|(r, s)| {
                    (
                        *r,
                        RowScore {
                            score: *s,
                            passed: Some(*s >= 1.0),
                            graders: BTreeMap::new(),
                            output: None,
                            error: None,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn the_front_keeps_each_row_s_best_and_drops_the_dominated() {
        let rows: Vec<Uuid> = (0..3).map(|i| Uuid::from_u128(i + 1)).collect();
        let mut rejected = candidate(3, &[1.0, 1.0, 1.0], &rows);
        rejected.accepted = false;
        let candidates = vec![
            candidate(0, &[1.0, 0.0, 0.0], &rows),
            candidate(1, &[0.0, 1.0, 0.0], &rows),
            // Dominates 0: as good on every row, better on the third.
            candidate(2, &[1.0, 0.0, 1.0], &rows),
            rejected,
        ];
        assert_eq!(front(&candidates, &rows), vec![(1, 1), (2, 2)]);
    }

    #[test]
    fn parents_are_drawn_by_weight_and_deterministically_per_seed() {
        let front = vec![(1, 1), (2, 3)];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let draws: Vec<usize> = (0..400).map(|_| pick_parent(&front, &mut rng)).collect();
        let twos = draws.iter().filter(|d| **d == 2).count();
        assert!((250..350).contains(&twos), "{twos} of 400");
        let mut again = rand::rngs::StdRng::seed_from_u64(7);
        let repeat: Vec<usize> = (0..400).map(|_| pick_parent(&front, &mut again)).collect();
        assert_eq!(draws, repeat);
        assert_eq!(pick_parent(&[], &mut again), 0);
    }
}
