//! Predicted validator trust: the vtrust this validator's weights would get if the chain ran an
//! epoch now with them stored, next to the vtrust its current row gets.
//!
//! A validator earns dividends in proportion to how much of its weight survives Yuma's clipping:
//! each uid `j` gets a consensus `c_j` (the stake-weighted median, at `kappa`, of the weights
//! the permitted, active validators give it), every weight above `c_j` is cut down to `c_j`,
//! and validator trust is what is left of the row, `vtrust_i = Σ_j min(w_ij, c_j)` with the row
//! `w_i` normalized to sum 1. No reference validator shows it before setting weights; here it is
//! computed with [`arena_yuma::epoch`] (bit-exact subtensor) on the chain's metagraph and
//! stored weights, this validator's row replaced by the one it is about to set.
//!
//! What goes in, and what does not:
//! - stake, permits, `last_update` and registration blocks: the metagraph's (stake as the
//!   metagraph's stake weight, alpha plus TAO at the TAO weight; no stake threshold);
//! - weights: the chain's stored rows, this validator's replaced by `mine` max-upscaled as
//!   `set_weights` stores it, and its `last_update` moved to `block` (setting weights does);
//! - hyperparameters: `tempo`, `max_allowed_validators` and `commit_reveal` from
//!   [`SubnetParams`]; the rest (kappa 0.5, the activity cutoff derived from tempo) are Yuma's
//!   defaults, since the `Chain` trait does not read them; no subnet owner (its self-weight
//!   would be kept) and no commit blocks (no weights dropped toward uids registered after a
//!   commit). A subnet with another kappa or activity cutoff gets an approximation.
//! - bonds: none. Consensus and validator trust depend on stake, weights, permits and
//!   kappa/clipping only, never on bonds (bonds shape dividends, which are not predicted).
//!
//! With commit-reveal the chain's rows are the ones revealed so far; `mine` is read as if it
//! were already revealed.

use anyhow::{Result, ensure};
use arena_chain::{Metagraph, SubnetParams, WeightRows};
use arena_yuma::{EpochInput, Hyperparameters, Matrix};
use serde::{Deserialize, Serialize};

/// How many uids [`Prediction::clipped`] lists at most.
pub const CLIPPED_SHOWN: usize = 5;

/// What an epoch would make of this validator's weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub netuid: u16,
    /// The block the metagraph was read at (the epoch is run as of it).
    pub block: u64,
    /// This validator's uid.
    pub uid: u16,
    /// Its validator trust with `mine` stored, as the chain would store it (u16 ÷ 65535).
    pub validator_trust: f64,
    /// The same with its current stored row (and `last_update`): what an epoch now would give.
    pub current_validator_trust: f64,
    /// `Σ_j max(0, w_j − c_j)` over its row `w` as Yuma reads it (max-upscaled, its self-weight
    /// and weights toward uids registered at or after `block` dropped, normalized to sum 1) and
    /// the predicted consensus `c`: the share of its weight clipping removes. 0 is fully in
    /// consensus, 1 is nothing left; for a row with any weight left it is
    /// `1 − validator_trust` up to fixed-point rounding. 0 for an empty row.
    pub consensus_distance: f64,
    /// The uids it weights above consensus, by how much (`w_j − c_j`), largest first, at most
    /// [`CLIPPED_SHOWN`].
    pub clipped: Vec<(u16, f64)>,
}

/// The prediction for uid `me` setting `mine` (`(uid, u16)`, as `set_weights` gets them) at
/// `block`. `Ok(None)` when `me` is not in the metagraph or holds no validator permit: its
/// weights are not read by the next epoch (a permit comes with the epoch after its stake ranks
/// among the top `max_allowed_validators`), so its vtrust there is 0 whatever it sets.
pub fn predict(
    metagraph: &Metagraph,
    weights: &WeightRows,
    params: &SubnetParams,
    me: u16,
    mine: &[(u16, u16)],
    block: u64,
) -> Result<Option<Prediction>> {
    let n = metagraph.neurons.len();
    ensure!(n > 0, "the metagraph of subnet {} has no uids", metagraph.netuid);
    ensure!(n <= u16::MAX as usize, "the metagraph has {n} uids; the chain allows at most 65535");
    let mut by_uid = vec![None; n];
    for x in &metagraph.neurons {
        let slot = by_uid.get_mut(x.uid as usize);
        ensure!(slot.is_some(), "the metagraph names uid {} but has {n} uids", x.uid);
        if let Some(slot) = slot {
            ensure!(slot.is_none(), "the metagraph names uid {} twice", x.uid);
            *slot = Some(x);
        }
    }
    let neurons: Vec<&arena_chain::Neuron> = by_uid.into_iter().flatten().collect();
    let Some(me_neuron) = neurons.get(me as usize) else { return Ok(None) };
    if !me_neuron.validator_permit {
        return Ok(None);
    }
    for (j, _) in mine {
        ensure!((*j as usize) < n, "the weights name uid {j}; subnet {} has {n} uids", metagraph.netuid);
    }
    let mut seen = std::collections::BTreeSet::new();
    for (j, _) in mine {
        ensure!(seen.insert(*j), "the weights name uid {j} twice");
    }

    // The chain's rows, by uid; entries naming uids past the metagraph (the two were read a
    // block apart and a uid registered in between) are left out.
    let mut rows: Vec<Vec<(u16, u16)>> = vec![Vec::new(); n];
    for (i, row) in weights {
        if let Some(r) = rows.get_mut(*i as usize) {
            *r = row.iter().copied().filter(|(j, _)| (*j as usize) < n).collect();
        }
    }
    let (uids, values): (Vec<u16>, Vec<u16>) = mine.iter().copied().unzip();
    let stored: Vec<(u16, u16)> = uids.into_iter().zip(arena_yuma::math::u16_max_upscale(&values)).collect();

    let hyperparameters = Hyperparameters {
        tempo: params.tempo,
        max_allowed_validators: params.max_allowed_validators,
        commit_reveal: params.commit_reveal,
        ..Hyperparameters::default()
    };
    let input = |rows: Vec<Vec<(u16, u16)>>, my_update: u64| EpochInput {
        current_block: block,
        last_mechanism_step_block: 0,
        stake: neurons.iter().map(|x| x.stake).collect(),
        tao_stake: vec![],
        tao_weight: 0,
        last_update: neurons.iter().map(|x| if x.uid == me { my_update } else { x.last_update }).collect(),
        block_at_registration: neurons.iter().map(|x| x.block_at_registration).collect(),
        validator_permit: neurons.iter().map(|x| x.validator_permit).collect(),
        owner_uid: None,
        weights: Matrix::Sparse(rows),
        bonds: None,
        commit_blocks: vec![],
        hyperparameters: hyperparameters.clone(),
        emission: 1_000_000_000,
        then: vec![],
    };
    let vtrust = |r: &arena_yuma::EpochResult| f64::from(r.uids[me as usize].validator_trust_u16) / 65535.0;

    let current = arena_yuma::epoch(&input(rows.clone(), me_neuron.last_update))?;
    rows[me as usize] = stored.clone();
    let predicted = arena_yuma::epoch(&input(rows, block))?;

    // The row as the epoch reads it: no self-weight (there is no owner here), nothing toward a
    // uid registered at or after its `last_update` (now `block`), normalized.
    let kept: Vec<(u16, f64)> = stored
        .iter()
        .filter(|(j, _)| *j != me && block > neurons[*j as usize].block_at_registration)
        .map(|&(j, v)| (j, f64::from(v)))
        .collect();
    let total: f64 = kept.iter().map(|(_, v)| v).sum();
    let mut clipped: Vec<(u16, f64)> = if total > 0.0 {
        kept.iter()
            .map(|&(j, v)| (j, v / total - predicted.uids[j as usize].consensus))
            // Above the fixed-point noise of the consensus (I32F32): clipped in earnest.
            .filter(|(_, excess)| *excess > 1e-6)
            .collect()
    } else {
        Vec::new()
    };
    // A fold from +0.0: an empty sum of f64 is -0.0, which would print as "-0.0%".
    let consensus_distance = clipped.iter().fold(0.0, |a, (_, e)| a + e).min(1.0);
    clipped.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    clipped.truncate(CLIPPED_SHOWN);

    Ok(Some(Prediction {
        netuid: metagraph.netuid,
        block,
        uid: me,
        validator_trust: vtrust(&predicted),
        current_validator_trust: vtrust(&current),
        consensus_distance,
        clipped,
    }))
}

impl std::fmt::Display for Prediction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "predicted vtrust {:.4} (now {:.4}), {:.1}% of its weight beyond consensus",
            self.validator_trust,
            self.current_validator_trust,
            self.consensus_distance * 100.0
        )?;
        if !self.clipped.is_empty() {
            let uids: Vec<String> = self.clipped.iter().map(|(u, e)| format!("uid {u} +{e:.4}")).collect();
            write!(f, " ({})", uids.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arena_chain::Neuron;

    const TAO: u64 = 1_000_000_000;

    /// Uids 0, 1, 2: validators with permits and 60 %, 25 %, 15 % of the stake; uids 3, 4, 5:
    /// miners without stake. Registered at block 0, weights last set at block 100; the epoch
    /// runs at 200 (well inside the activity cutoff of tempo 360, 5000 blocks). kappa is 0.5.
    fn metagraph() -> Metagraph {
        let stake = [60 * TAO, 25 * TAO, 15 * TAO, 0, 0, 0];
        Metagraph {
            netuid: 1,
            block: 200,
            neurons: stake
                .iter()
                .enumerate()
                .map(|(uid, &stake)| Neuron {
                    uid: uid as u16,
                    hotkey: format!("hk{uid}"),
                    coldkey: format!("ck{uid}"),
                    stake,
                    validator_permit: uid < 3,
                    active: true,
                    last_update: 100,
                    block_at_registration: 0,
                    consensus: 0,
                    incentive: 0,
                    dividends: 0,
                    emission: 0,
                })
                .collect(),
        }
    }

    /// uid 0 gives uid 3 three quarters and uid 4 one quarter (65535 : 21845); uid 1 splits
    /// evenly; uid 2 (the validator under test) currently puts everything on uid 4.
    fn chain_weights() -> WeightRows {
        vec![(0, vec![(3, 65535), (4, 21845)]), (1, vec![(3, 65535), (4, 65535)]), (2, vec![(4, 65535)])]
    }

    fn params() -> SubnetParams {
        SubnetParams {
            tempo: 360,
            weights_rate_limit: 100,
            weights_version_key: 0,
            commit_reveal: false,
            reveal_period_epochs: 1,
            epoch_index: 0,
            commit_reveal_version: 4,
            schedule: None,
            max_allowed_validators: 64,
        }
    }

    fn run(mine: &[(u16, u16)]) -> Prediction {
        predict(&metagraph(), &chain_weights(), &params(), 2, mine, 200).unwrap().expect("uid 2 has a permit")
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4
    }

    /// With uid 2 setting (0.75, 0.25) like the 60 % majority: column 3 holds 0.75 (60 %),
    /// 0.5 (25 %), 0.75 (15 %), so 75 % of the stake gives at least 0.75 and c₃ = 0.75;
    /// column 4 holds 0.25, 0.5, 0.25, where only 25 % gives 0.5, so c₄ = 0.25. Nothing of its
    /// row is above consensus: vtrust 1, as uid 0's (the same row) is.
    #[test]
    fn agreeing_with_the_stake_majority_is_full_vtrust() {
        let p = run(&[(3, 65535), (4, 21845)]);
        assert!(close(p.validator_trust, 1.0), "{p:?}");
        assert!(close(p.consensus_distance, 0.0), "{p:?}");
        assert!(p.clipped.is_empty(), "{p:?}");
        assert_eq!((p.netuid, p.block, p.uid), (1, 200, 2));
    }

    /// All of uid 2's weight on uid 5, which nobody else weights: 15 % of the stake is below
    /// the majority, c₅ = 0, the whole row is clipped.
    #[test]
    fn weight_nobody_else_gives_is_no_vtrust() {
        let p = run(&[(5, 65535)]);
        assert!(close(p.validator_trust, 0.0), "{p:?}");
        assert!(close(p.consensus_distance, 1.0), "{p:?}");
        assert_eq!(p.clipped.len(), 1);
        assert_eq!(p.clipped[0].0, 5);
        assert!(close(p.clipped[0].1, 1.0), "{p:?}");
    }

    /// Current row (0, 1): column 3 is 0.75 / 0.5 / 0 → c₃ = 0.75 (60 % at 0.75); column 4 is
    /// 0.25 / 0.5 / 1 → 40 % at 0.5 or more, 100 % at 0.25 or more → c₄ = 0.25; its vtrust is
    /// min(1, 0.25) = 0.25. New row (1, 0): column 3 is 0.75 / 0.5 / 1 → 15 % at 1, 75 % at
    /// 0.75 → c₃ = 0.75; column 4 is 0.25 / 0.5 / 0 → 85 % at 0.25, 25 % at 0.5 → c₄ = 0.25;
    /// vtrust min(1, 0.75) = 0.75, and 0.25 of its weight (all on uid 3) is clipped.
    #[test]
    fn the_new_row_changes_the_vtrust_from_the_current_one() {
        let p = run(&[(3, 65535)]);
        assert!(close(p.current_validator_trust, 0.25), "{p:?}");
        assert!(close(p.validator_trust, 0.75), "{p:?}");
        assert!(close(p.consensus_distance, 0.25), "{p:?}");
        assert_eq!(p.clipped.len(), 1);
        assert_eq!(p.clipped[0].0, 3);
        assert!(close(p.clipped[0].1, 0.25), "{p:?}");
    }

    /// Unscaled values are read as `set_weights` stores them (max-upscaled: 2 : 0 is 65535 : 0),
    /// and self-weight is dropped before normalizing: both rows give the previous test's 0.75.
    #[test]
    fn values_are_upscaled_and_self_weight_is_dropped() {
        assert!(close(run(&[(3, 2)]).validator_trust, 0.75));
        let p = run(&[(2, 65535), (3, 65535)]);
        assert!(close(p.validator_trust, 0.75), "{p:?}");
        assert!(close(p.consensus_distance, 0.25), "{p:?}");
        assert_eq!(p.clipped.iter().map(|c| c.0).collect::<Vec<_>>(), [3]);
    }

    /// A validator with no current row and a stale `last_update` (inactive: 6000 blocks ago,
    /// past the 5000-block cutoff; the others set theirs at 5900) has vtrust 0 now; setting the
    /// majority's row (it becomes active at `block`) gives 1.
    #[test]
    fn no_row_now_is_no_vtrust_now() {
        let mut m = metagraph();
        for x in &mut m.neurons {
            x.last_update = 5900;
        }
        m.neurons[2].last_update = 0;
        let w: WeightRows = chain_weights().into_iter().filter(|(u, _)| *u != 2).collect();
        let p = predict(&m, &w, &params(), 2, &[(3, 65535), (4, 21845)], 6000).unwrap().unwrap();
        assert!(close(p.current_validator_trust, 0.0), "{p:?}");
        assert!(close(p.validator_trust, 1.0), "{p:?}");
    }

    #[test]
    fn no_permit_or_no_uid_is_no_prediction() {
        let mut m = metagraph();
        m.neurons[2].validator_permit = false;
        assert_eq!(predict(&m, &chain_weights(), &params(), 2, &[(3, 1)], 200).unwrap(), None);
        assert_eq!(predict(&metagraph(), &chain_weights(), &params(), 9, &[(3, 1)], 200).unwrap(), None);
    }

    #[test]
    fn weights_naming_unknown_or_repeated_uids_are_refused() {
        let e = predict(&metagraph(), &chain_weights(), &params(), 2, &[(6, 1)], 200).unwrap_err();
        assert!(e.to_string().contains("uid 6"), "{e}");
        let e = predict(&metagraph(), &chain_weights(), &params(), 2, &[(3, 1), (3, 2)], 200).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }

    #[test]
    fn the_log_line_names_both_numbers() {
        let line = run(&[(3, 65535)]).to_string();
        assert!(line.starts_with("predicted vtrust 0.75"), "{line}");
        assert!(line.contains("(now 0.25"), "{line}");
        assert!(line.contains("25.0% of its weight beyond consensus"), "{line}");
        assert!(line.contains("uid 3 +0.25"), "{line}");
    }
}
