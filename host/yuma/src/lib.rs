//! Yuma Consensus: subtensor's epoch (`epoch_mechanism`, the sparse version the chain runs),
//! reimplemented on the same fixed-point types so a preview gives the chain's numbers bit for bit.
//!
//! Input is what the chain reads at the epoch block (stakes, stored u16 weights and bonds,
//! activity and registration blocks, permits, hyperparameters); output is what it writes
//! (consensus, incentive, dividends, validator trust, emissions, permits, bonds). Pure: no I/O.
//! Reference: opentensor/subtensor `pallets/subtensor/src/epoch/run_epoch.rs` and `math.rs`
//! (main @14bc6f9f); the facts are in `shared/reference/chain.md` §1.

pub mod math;
pub mod report;

use anyhow::{Context, Result, bail, ensure};
use math::{Fx, Fx64, Sparse};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use substrate_fixed::types::{I96F32, U96F32};

/// A matrix of u16 values as the chain stores them: dense rows (`[[0, 65535, ...], ...]`, zeros
/// are left out) or sparse rows of `[uid, value]` pairs (`[[[1, 65535]], [], ...]`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Matrix {
    Dense(Vec<Vec<u16>>),
    Sparse(Vec<Vec<(u16, u16)>>),
}

impl Matrix {
    /// Sparse rows for `n` uids, in the order given (dense rows in uid order, zeros dropped).
    pub fn rows(&self, n: usize, what: &str) -> Result<Vec<Vec<(u16, u16)>>> {
        let rows: Vec<Vec<(u16, u16)>> = match self {
            Matrix::Dense(d) => d
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    ensure!(
                        row.is_empty() || row.len() == n,
                        "{what}: dense row {i} has {} values; it needs {n} (one per uid) or none",
                        row.len()
                    );
                    Ok(row
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| **v != 0)
                        .map(|(j, v)| (j as u16, *v))
                        .collect())
                })
                .collect::<Result<_>>()?,
            Matrix::Sparse(s) => s.clone(),
        };
        ensure!(rows.len() <= n, "{what}: {} rows for {n} uids", rows.len());
        for (i, row) in rows.iter().enumerate() {
            let mut seen = std::collections::BTreeSet::new();
            for (j, _) in row {
                ensure!((*j as usize) < n, "{what}: row {i} names uid {j}, but there are {n} uids");
                ensure!(seen.insert(*j), "{what}: row {i} names uid {j} twice");
            }
        }
        let mut rows = rows;
        rows.resize(n, Vec::new());
        Ok(rows)
    }
}

/// The subnet's hyperparameters the epoch reads, raw as the chain stores them.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Hyperparameters {
    /// Blocks per epoch.
    pub tempo: u16,
    /// Consensus majority, u16 (÷65535).
    pub kappa: u16,
    /// EMA factor of bonds, ×1e6 (α = 1 − bonds_moving_average/1e6).
    pub bonds_moving_average: u64,
    /// u16 (÷65535): 0 bonds on raw weights, 65535 on clipped weights.
    pub bonds_penalty: u16,
    pub liquid_alpha: bool,
    /// Liquid alpha bounds, u16 (÷65535).
    pub alpha_low: u16,
    pub alpha_high: u16,
    pub alpha_sigmoid_steepness: i16,
    pub yuma3: bool,
    /// Blocks without a weight update after which a validator is inactive. When absent,
    /// `max(1, activity_cutoff_factor_milli · tempo / 1000)` as the chain derives it.
    pub activity_cutoff: Option<u64>,
    pub activity_cutoff_factor_milli: u32,
    pub max_allowed_validators: u16,
    /// Commit-reveal on: weights are also dropped toward uids registered after the validator's
    /// earliest active commit (`commit_blocks`).
    pub commit_reveal: bool,
    /// Stake (rao) below which a uid's stake counts 0 (the owner is exempt).
    pub stake_threshold: u64,
}

impl Default for Hyperparameters {
    fn default() -> Self {
        Self {
            tempo: 360,
            kappa: 32_767,
            bonds_moving_average: 900_000,
            bonds_penalty: u16::MAX,
            liquid_alpha: false,
            alpha_low: 45_875,
            alpha_high: 58_982,
            alpha_sigmoid_steepness: 1000,
            yuma3: false,
            activity_cutoff: None,
            activity_cutoff_factor_milli: 13_889,
            max_allowed_validators: 128,
            commit_reveal: false,
            stake_threshold: 0,
        }
    }
}

impl Hyperparameters {
    pub fn activity_cutoff_blocks(&self) -> u64 {
        self.activity_cutoff
            .unwrap_or_else(|| (self.activity_cutoff_factor_milli as u64 * self.tempo as u64 / 1000).max(1))
    }
}

/// One epoch's state, as the chain holds it at the epoch block.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EpochInput {
    /// The block the epoch runs at.
    pub current_block: u64,
    /// `LastMechansimStepBlock`: the block of the previous epoch (0 if none; then
    /// `current_block - tempo` stands in for the last tempo).
    #[serde(default)]
    pub last_mechanism_step_block: u64,
    /// Alpha stake per uid (rao, inherited through child keys), which fixes the number of uids.
    pub stake: Vec<u64>,
    /// TAO stake per uid (rao), counted at `tao_weight`.
    #[serde(default)]
    pub tao_stake: Vec<u64>,
    /// The global `TaoWeight`, raw (÷ u64::MAX).
    #[serde(default)]
    pub tao_weight: u64,
    /// Block of each uid's last weight update.
    pub last_update: Vec<u64>,
    /// Block each uid was registered at.
    pub block_at_registration: Vec<u64>,
    /// Validator permits from the previous epoch.
    pub validator_permit: Vec<bool>,
    /// The subnet owner's uid: always permitted, exempt from the stake threshold, keeps its
    /// self-weight.
    #[serde(default)]
    pub owner_uid: Option<u16>,
    /// Weights as stored (`set_weights` max-upscales each row so its largest value is 65535;
    /// rows given unscaled are upscaled the same way).
    pub weights: Matrix,
    /// Bonds as stored after the previous epoch (none when absent).
    #[serde(default)]
    pub bonds: Option<Matrix>,
    /// With commit-reveal: each uid's earliest unexpired commit block (null when none).
    #[serde(default)]
    pub commit_blocks: Vec<Option<u64>>,
    #[serde(default)]
    pub hyperparameters: Hyperparameters,
    /// Alpha emitted by this epoch, in rao.
    #[serde(default = "default_emission")]
    pub emission: u64,
    /// Later epochs (`arena yuma --epochs`): each may replace the weights or stakes; see `run`.
    #[serde(default)]
    pub then: Vec<EpochChange>,
}

fn default_emission() -> u64 {
    1_000_000_000
}

/// What changes before a later epoch.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EpochChange {
    #[serde(default)]
    pub weights: Option<Matrix>,
    #[serde(default)]
    pub stake: Option<Vec<u64>>,
}

/// One uid's epoch result: the chain's fixed-point values as floats (exact) and as the u16 the
/// chain stores.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UidResult {
    pub uid: u16,
    pub active: bool,
    pub validator_permit: bool,
    /// Normalized stake.
    pub stake: f64,
    pub consensus: f64,
    pub validator_trust: f64,
    pub incentive: f64,
    pub dividends: f64,
    pub consensus_u16: u16,
    pub validator_trust_u16: u16,
    pub incentive_u16: u16,
    pub dividends_u16: u16,
    pub stake_weight_u16: u16,
    /// Rao to the uid as a miner (incentive) and as a validator (dividends), and their sum
    /// as the chain records it in `Emission`.
    pub server_emission: u64,
    pub validator_emission: u64,
    pub emission: u64,
    /// The uid's stored bond row, `(uid, u16)`.
    pub bonds: Vec<(u16, u16)>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EpochResult {
    pub block: u64,
    pub uids: Vec<UidResult>,
}

/// Checks the shape of an input; every vector must have one entry per uid.
fn check(input: &EpochInput) -> Result<usize> {
    let n = input.stake.len();
    ensure!(n > 0, "stake is empty: it needs one entry per uid");
    ensure!(n <= u16::MAX as usize, "{n} uids; the chain allows at most 65535");
    for (name, len) in [
        ("last_update", input.last_update.len()),
        ("block_at_registration", input.block_at_registration.len()),
        ("validator_permit", input.validator_permit.len()),
    ] {
        ensure!(len == n, "{name} has {len} entries; stake has {n} (one per uid)");
    }
    ensure!(
        input.tao_stake.is_empty() || input.tao_stake.len() == n,
        "tao_stake has {} entries; stake has {n}",
        input.tao_stake.len()
    );
    ensure!(
        input.commit_blocks.is_empty() || input.commit_blocks.len() == n,
        "commit_blocks has {} entries; stake has {n}",
        input.commit_blocks.len()
    );
    if let Some(o) = input.owner_uid {
        ensure!((o as usize) < n, "owner_uid {o} is not a uid (there are {n})");
    }
    let h = &input.hyperparameters;
    ensure!(h.alpha_low <= h.alpha_high, "alpha_low {} is above alpha_high {}", h.alpha_low, h.alpha_high);
    ensure!(
        h.bonds_moving_average <= 1_000_000,
        "bonds_moving_average {} is above 1000000",
        h.bonds_moving_average
    );
    Ok(n)
}

fn to_fixed(rows: &[Vec<(u16, u16)>], f: impl Fn(u16) -> Fx) -> Sparse {
    rows.iter().map(|r| r.iter().map(|&(j, v)| (j, f(v))).collect()).collect()
}

/// Runs one epoch.
pub fn epoch(input: &EpochInput) -> Result<EpochResult> {
    let n = check(input)?;
    let h = &input.hyperparameters;
    let block = input.current_block;
    let tempo = h.tempo as u64;

    // Activity.
    let cutoff = h.activity_cutoff_blocks();
    let inactive: Vec<bool> = input.last_update.iter().map(|u| u.saturating_add(cutoff) < block).collect();

    // Stake: alpha + tao · tao_weight in I64F64, threshold, normalize, then I32F32.
    let tao_weight = Fx64::saturating_from_num(
        U96F32::saturating_from_num(input.tao_weight)
            .checked_div(U96F32::saturating_from_num(u64::MAX))
            .unwrap_or_default(),
    );
    let mut stake64: Vec<Fx64> = (0..n)
        .map(|i| {
            let alpha = Fx64::saturating_from_num(input.stake[i]);
            let tao = Fx64::saturating_from_num(input.tao_stake.get(i).copied().unwrap_or(0));
            alpha.saturating_add(tao.saturating_mul(tao_weight))
        })
        .collect();
    for (i, s) in stake64.iter_mut().enumerate() {
        if input.owner_uid != Some(i as u16) && s.saturating_to_num::<u64>() < h.stake_threshold {
            *s = Fx64::from_num(0);
        }
    }
    math::normalize64(&mut stake64);
    let stake: Vec<Fx> = stake64.iter().map(|s| Fx::saturating_from_num(*s)).collect();

    // Permits.
    let mut permits = input.validator_permit.clone();
    let mut new_permits = math::is_topk_nonzero(&stake, h.max_allowed_validators as usize);
    if let Some(o) = input.owner_uid {
        permits[o as usize] = true;
        new_permits[o as usize] = true;
    }
    let forbids: Vec<bool> = permits.iter().map(|p| !p).collect();

    let mut active_stake = stake.clone();
    math::mask_vector(&inactive, &mut active_stake);
    math::mask_vector(&forbids, &mut active_stake);
    math::normalize(&mut active_stake);

    // Weights: stored u16 values read as numbers, then masked and row-normalized.
    let stored: Vec<Vec<(u16, u16)>> = input
        .weights
        .rows(n, "weights")?
        .into_iter()
        .map(|row| {
            let (uids, vals): (Vec<u16>, Vec<u16>) = row.into_iter().unzip();
            uids.into_iter().zip(math::u16_max_upscale(&vals)).collect()
        })
        .collect();
    let mut weights = to_fixed(&stored, Fx::saturating_from_num);
    weights = math::mask_rows_sparse(&forbids, &weights);
    weights = math::mask_diag_sparse(&weights, input.owner_uid);
    weights = math::mask_sparse_by(
        &weights,
        &input.last_update,
        &input.block_at_registration,
        |updated, registered| updated <= registered,
    );
    if h.commit_reveal {
        let commits: Vec<u64> =
            (0..n).map(|i| input.commit_blocks.get(i).copied().flatten().unwrap_or(u64::MAX)).collect();
        weights =
            math::mask_sparse_by(&weights, &commits, &input.block_at_registration, |commit, registered| {
                commit < registered
            });
    }
    math::row_normalize_sparse(&mut weights);

    // Consensus, clipping, trust, incentive.
    let kappa = math::u16_proportion(h.kappa);
    let consensus = math::weighted_median_col_sparse(&active_stake, &weights, n, kappa);
    let clipped = math::col_clip_sparse(&weights, &consensus);
    let validator_trust = math::row_sum_sparse(&clipped);
    let mut incentive = math::matmul_sparse(&clipped, &active_stake, n);
    math::normalize(&mut incentive);

    // Bonds and dividends.
    let penalty = math::u16_proportion(h.bonds_penalty);
    let weights_for_bonds = math::interpolate_sparse(&weights, &clipped, n, penalty);
    let old_bonds = match &input.bonds {
        Some(b) => b.rows(n, "bonds")?,
        None => vec![Vec::new(); n],
    };
    let last_tempo = if input.last_mechanism_step_block == 0 {
        block.saturating_sub(tempo)
    } else {
        input.last_mechanism_step_block.saturating_add(1)
    };
    let bma = Fx64::saturating_from_num(h.bonds_moving_average)
        .checked_div(Fx64::saturating_from_num(1_000_000))
        .unwrap_or_default();
    let alpha = math::one().saturating_sub(Fx::saturating_from_num(bma));
    let mask_new = |b: &Sparse| {
        math::mask_sparse_by(b, &vec![last_tempo; n], &input.block_at_registration, |last, registered| {
            last <= registered
        })
    };

    let (dividends, ema_bonds) = if h.yuma3 {
        let bonds =
            mask_new(&to_fixed(&old_bonds, |v| math::div(Fx::saturating_from_num(v), math::u16_max())));
        let liquid = h.liquid_alpha && consensus.iter().any(|c| *c != math::zero());
        let ema = if liquid {
            let (low, high) = (math::u16_proportion(h.alpha_low), math::u16_proportion(h.alpha_high));
            let steep = Fx::saturating_from_num(h.alpha_sigmoid_steepness);
            let alphas = math::liquid_alphas(&weights_for_bonds, &bonds, &consensus, low, high, steep);
            math::mat_ema_alpha_sparse(&weights_for_bonds, &bonds, &alphas)
        } else {
            math::mat_ema_sparse(&weights_for_bonds, &bonds, alpha)
        };
        let mut norm = ema.clone();
        math::col_normalize_sparse(&mut norm, n);
        let per_validator = math::row_sum_sparse(&math::mat_vec_mul_sparse(&norm, &incentive));
        let mut d = math::vec_mul(&per_validator, &active_stake);
        math::normalize(&mut d);
        (d, ema)
    } else {
        let mut bonds = mask_new(&to_fixed(&old_bonds, Fx::saturating_from_num));
        math::col_normalize_sparse(&mut bonds, n);
        let mut delta = math::row_hadamard_sparse(&weights_for_bonds, &active_stake);
        math::col_normalize_sparse(&mut delta, n);
        let mut ema = math::mat_ema_sparse(&delta, &bonds, alpha);
        math::col_normalize_sparse(&mut ema, n);
        let mut d = math::matmul_transpose_sparse(&ema, &incentive);
        math::normalize(&mut d);
        math::col_max_upscale_sparse(&mut ema, n);
        (d, ema)
    };

    // Emission.
    let combined: Vec<Fx> = incentive.iter().zip(&dividends).map(|(i, d)| i.saturating_add(*d)).collect();
    let emission_sum = math::sum(&combined);
    let mut server = incentive.clone();
    let mut validator = dividends.clone();
    let mut combined_norm = combined.clone();
    math::normalize_using_sum(&mut server, emission_sum);
    math::normalize_using_sum(&mut validator, emission_sum);
    math::normalize(&mut combined_norm);
    if emission_sum == math::zero() {
        let fallback = if math::is_zero(&active_stake) { &stake } else { &active_stake };
        validator.clone_from(fallback);
        combined_norm.clone_from(fallback);
    }
    let rao = I96F32::saturating_from_num(input.emission);
    let to_rao = |x: &Fx| I96F32::saturating_from_num(*x).saturating_mul(rao).saturating_to_num::<u64>();

    let uids = (0..n)
        .map(|i| UidResult {
            uid: i as u16,
            active: !inactive[i],
            validator_permit: new_permits[i],
            stake: math::to_f64(stake[i]),
            consensus: math::to_f64(consensus[i]),
            validator_trust: math::to_f64(validator_trust[i]),
            incentive: math::to_f64(incentive[i]),
            dividends: math::to_f64(dividends[i]),
            consensus_u16: math::proportion_to_u16(consensus[i]),
            validator_trust_u16: math::proportion_to_u16(validator_trust[i]),
            incentive_u16: math::proportion_to_u16(incentive[i]),
            dividends_u16: math::proportion_to_u16(dividends[i]),
            stake_weight_u16: math::proportion_to_u16(stake[i]),
            server_emission: to_rao(&server[i]),
            validator_emission: to_rao(&validator[i]),
            emission: to_rao(&combined_norm[i]),
            // Only uids that hold a permit after this epoch keep a bond row.
            bonds: if new_permits[i] {
                ema_bonds[i].iter().map(|&(j, v)| (j, math::proportion_to_u16(v))).collect()
            } else {
                Vec::new()
            },
        })
        .collect();
    Ok(EpochResult { block, uids })
}

/// The most epochs one [`run`] takes.
pub const MAX_EPOCHS: usize = 100_000;
/// The most uids a subnet has: uids are u16, and so is subtensor's `MaxAllowedUids`.
pub const MAX_UIDS: usize = u16::MAX as usize;

/// Runs `epochs` epochs, `tempo` blocks apart (subtensor's stateful scheduler).
/// Between epochs the bonds and permits the previous epoch stored carry over, every uid's
/// `last_update` moves forward by the same amount (validators keep setting the same weights),
/// and `then[k]` (if any) replaces the weights or stakes of epoch `k + 1`.
pub fn run(input: &EpochInput, epochs: usize) -> Result<Vec<EpochResult>> {
    ensure!(epochs >= 1, "--epochs must be at least 1");
    ensure!(epochs <= MAX_EPOCHS, "--epochs {epochs} is more than {MAX_EPOCHS}, the most one run takes");
    ensure!(
        input.stake.len() <= MAX_UIDS,
        "stake has {} entries; a subnet has at most {MAX_UIDS} uids (uids are u16)",
        input.stake.len()
    );
    let mut state = input.clone();
    let mut out = Vec::with_capacity(epochs);
    for k in 0..epochs {
        if k > 0 {
            let prev: &EpochResult = out.last().context("previous epoch")?;
            let step = state.hyperparameters.tempo as u64;
            state.last_mechanism_step_block = state.current_block;
            let overflow = || anyhow::anyhow!("epoch {k}: the block number overflows u64");
            state.current_block = state.current_block.checked_add(step).ok_or_else(overflow)?;
            for u in state.last_update.iter_mut() {
                *u = u.checked_add(step).ok_or_else(overflow)?;
            }
            state.validator_permit = prev.uids.iter().map(|u| u.validator_permit).collect();
            state.bonds = Some(Matrix::Sparse(prev.uids.iter().map(|u| u.bonds.clone()).collect()));
            if let Some(change) = input.then.get(k - 1) {
                if let Some(w) = &change.weights {
                    state.weights = w.clone();
                }
                if let Some(s) = &change.stake {
                    if s.len() != state.stake.len() {
                        bail!(
                            "then[{}].stake has {} entries; stake has {}",
                            k - 1,
                            s.len(),
                            state.stake.len()
                        );
                    }
                    state.stake = s.clone();
                }
            }
        }
        out.push(epoch(&state).with_context(|| format!("epoch {}", k + 1))?);
    }
    Ok(out)
}
