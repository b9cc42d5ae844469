//! The two files a user writes: a competition (a subnet owner's incentive mechanism) and a
//! validator configuration (which competitions this validator funds, and how it runs).
//!
//! The types here are plain serde data; [`source`] parses them with spans, [`check`] adds the
//! semantic checks. `arena schema` prints their JSON Schema.

pub mod check;
pub mod source;

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One competition: what is evaluated, how raw scores become a total, and how totals become
/// weights on chain.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Competition {
    /// Stable string id, used in RAW.json, the validator's `[funding]` and the EMA state.
    /// Lower-case letters, digits and `-`.
    pub id: String,
    /// The numeric id miners write in their on-chain commitment.
    pub competition_id: u32,
    /// The subnet this competition belongs to. Files of one subnet are checked together
    /// (on-chain ids, schedules, emission shares).
    pub netuid: Option<u16>,
    /// Human name.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Share of the subnet's emission this competition receives while active, in (0, 1].
    /// Shares of the competitions active at one block are renormalized to sum to 1.
    pub emission_share: f64,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub constraints: Constraints,
    pub data: Data,
    /// The evaluation tasks, at least one.
    pub tasks: Vec<Task>,
    pub score: Score,
    pub ranking: Ranking,
    /// Limits of each evaluation run (`arena round` enforces them in its isolated workers).
    #[serde(default)]
    pub limits: Limits,
    /// How miners commit their models on chain for this competition.
    #[serde(default)]
    pub commitment: CommitmentSpec,
}

/// The on-chain commitment miners publish for a competition.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitmentSpec {
    /// `taoverse` (SN9/SN37, the default), `taoverse-legacy` (4 fields, SN9 before
    /// competitions) or `dippy` (SN11).
    #[serde(default)]
    pub format: crate::commitment::Format,
    /// The competition id as commitments write it (SN11 writes "d1"); default: `competition_id`.
    pub id: Option<String>,
}

impl Competition {
    /// The competition id as this competition's commitments write it.
    pub fn commitment_id(&self) -> String {
        self.commitment.id.clone().unwrap_or_else(|| self.competition_id.to_string())
    }

    /// Whether a parsed commitment is for this competition (a legacy commitment, which names
    /// none, belongs to competition 0).
    pub fn owns(&self, c: &crate::commitment::ModelCommitment) -> bool {
        match &c.competition_id {
            Some(id) => *id == self.commitment_id(),
            None => self.competition_id == 0 && self.commitment.id.is_none(),
        }
    }
}

/// Per-run limits: a run past them fails with `timeout` or `out_of_memory`, the round goes on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock seconds per run.
    pub timeout: Option<f64>,
    /// Address space per run: bytes, or a string such as "8GiB".
    pub memory: Option<ByteSize>,
}

/// When the competition is active, by block: `from_block <= block < until_block`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    #[serde(default)]
    pub from_block: u64,
    /// Exclusive end (a sunset). Absent: no end.
    pub until_block: Option<u64>,
    /// Which submissions a validator's round evaluates (taoverse's eval set): with `keep = N`,
    /// the N best of its previous scored round, the submissions it has not evaluated yet (new or
    /// changed commitments), and once more a submission whose runs failed for infrastructure
    /// reasons (never one that failed for its own); the others are not run and keep their weight
    /// only through the EMA (SN37 3, SN9 5). Absent: every submission in every round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<u32>,
}

impl Schedule {
    pub fn is_active(&self, block: u64) -> bool {
        block >= self.from_block && self.until_block.is_none_or(|until| block < until)
    }
}

/// What a submission must be before it is evaluated.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// Allowed model architectures (config.json `architectures`); empty: any.
    #[serde(default)]
    pub architectures: Vec<String>,
    pub min_parameters: Option<u64>,
    pub max_parameters: Option<u64>,
    /// Smallest total size of the submission's files: bytes, or a string such as "40MiB".
    pub min_bytes: Option<ByteSize>,
    /// Largest total size of the submission's files: bytes, or a string such as "15GiB".
    pub max_bytes: Option<ByteSize>,
    pub sequence_length: Option<u32>,
    /// A tokenizer forced on every submission (a hub repository, `OWNER/NAME[@REVISION]`, read
    /// from the hub cache): its files replace the submission's tokenizer files when the
    /// submission is evaluated (SN9); absent: the submission's own.
    pub tokenizer: Option<String>,
    pub dtype: Option<Dtype>,
    /// Blocks that must pass after the on-chain commit before a submission is evaluated.
    #[serde(default)]
    pub eval_block_delay: u64,
    /// Chat templates a miner may choose from (the `chat_template` of its commitment, SN11);
    /// empty: the model's own. A submission naming another is refused.
    #[serde(default)]
    pub chat_templates: Vec<String>,
}

impl Constraints {
    /// Whether the constraints are about a language model's files (config.json, safetensors
    /// headers), so that a submission must be a Hugging Face model directory to be evaluated.
    /// Size limits apply to a submission of any kind.
    pub fn checks_model(&self) -> bool {
        !self.architectures.is_empty()
            || self.min_parameters.is_some()
            || self.max_parameters.is_some()
            || self.sequence_length.is_some()
            || self.dtype.is_some()
    }
}

/// A byte count written as an integer or as a string with a unit ("15GiB", "40MB").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct ByteSize(#[schemars(with = "ByteSizeSchema")] pub u64);

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ByteSizeSchema {
    Bytes(u64),
    /// An integer with a unit: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB.
    Text(#[schemars(regex(pattern = r"^\s*\d+(\.\d+)?\s*[KMGTkmgt]?i?[Bb]?\s*$"))] String),
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a byte count: an integer, or a string like \"15GiB\"")
        })? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Text(s) => crate::units::parse_size(&s).map(ByteSize).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Float32,
    Float16,
    Bfloat16,
}

/// Where evaluation data comes from and how it is seeded.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Data {
    pub seed: SeedPolicy,
    /// Default number of samples per task (a task's `samples` overrides it).
    pub samples: Option<u32>,
}

/// How the seed of an evaluation round is chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SeedPolicy {
    /// sha256 of the hash of the sync block, `(block - genesis) / cadence * cadence + genesis`
    /// (SN37: cadence 360, genesis 3138611; SN9: cadence 150).
    SyncBlockHash {
        cadence: u64,
        #[serde(default)]
        genesis: u64,
    },
    /// The same seed every round (local runs, demos, reproducible benchmarks).
    Fixed { value: u64 },
}

/// One evaluation task: a plugin's task kind, run on a dataset, giving one raw score.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// A name unique in the competition, usable as a variable in formulas:
    /// `[A-Za-z_][A-Za-z0-9_]*`.
    pub name: String,
    /// The plugin's name (as `arena plugins list` shows it).
    pub plugin: String,
    /// The plugin's task kind.
    pub kind: String,
    /// Parameters handed to the plugin, checked against its JSON Schema.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The dataset the samples come from.
    pub dataset: Option<String>,
    /// Samples per evaluation, drawn with Python's `random.shuffle` of the rows seeded by the
    /// round's seed; absent: `data.samples`, else every row.
    pub samples: Option<u32>,
    /// Draw pages of consecutive rows instead of single rows (SN9/SN37's page choice:
    /// `randint` over the dataset's pages, seeded by the round's seed). Excludes `samples`.
    pub pages: Option<Pages>,
    /// Which output of the plugin is the raw score: absent for its `raw_score`, or the name of
    /// one of its `metrics`.
    pub metric: Option<String>,
    /// Weight in a `weighted_sum` aggregate (required there; unused by a formula).
    pub weight: Option<f64>,
    /// Whether a lower or a higher raw score is better.
    pub direction: Direction,
    #[serde(default)]
    pub normalization: Normalization,
    /// A threshold on the raw score: a submission outside it scores as failed (SN11 coherence).
    pub gate: Option<Gate>,
}

/// `count` pages of `rows` consecutive rows each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pages {
    pub count: u32,
    pub rows: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Lower,
    Higher,
}

impl Direction {
    /// True when `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Lower => a < b,
            Direction::Higher => a > b,
        }
    }
    pub fn flip(self) -> Direction {
        match self {
            Direction::Lower => Direction::Higher,
            Direction::Higher => Direction::Lower,
        }
    }
}

/// How a raw score is mapped before it is weighted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Normalization {
    /// The raw score as is.
    #[default]
    None,
    /// taoverse: `1` at or above `ceiling`, else `(1 - exp(-x/ceiling)) / (1 - exp(-1))`.
    InverseExponential { ceiling: f64 },
    /// `(x - min) / (max - min)`, clamped to [0, 1].
    MinMax { min: f64, max: f64 },
    /// `x * scale + offset`, then clamped to `clamp` when given (SN34: MCC `(x + 1) / 2`).
    Affine {
        scale: f64,
        #[serde(default)]
        offset: f64,
        clamp: Option<[f64; 2]>,
    },
}

/// Bounds on a task's raw score (inclusive); a submission outside them fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Gate {
    pub fn passes(&self, raw: f64) -> bool {
        self.min.is_none_or(|m| raw >= m) && self.max.is_none_or(|m| raw <= m)
    }
}

/// How task scores become one total per submission.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Score {
    /// Whether a lower (a loss) or a higher total is better.
    pub direction: Direction,
    #[serde(default)]
    pub aggregate: Aggregate,
    /// The total of a submission that failed a task or a gate. Default: +inf when lower is
    /// better (SN9/SN37), 0 when higher is better (SN11).
    pub failure_score: Option<f64>,
}

impl Score {
    pub fn failure(&self) -> f64 {
        self.failure_score.unwrap_or(match self.direction {
            Direction::Lower => f64::INFINITY,
            Direction::Higher => 0.0,
        })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Aggregate {
    /// `Σ normalized_t * weight_t / Σ weight_t` (SN9, SN37).
    #[default]
    WeightedSum,
    /// A CEL expression over the tasks' normalized scores (variables named after the tasks,
    /// raw scores in the map `raw`). Functions: exp, ln, sqrt, pow, abs, min, max, clamp.
    /// CEL does not mix integers and doubles: write `8.0`, not `8`.
    Formula { expr: String },
}

/// How totals become this competition's weights.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ranking {
    #[serde(default)]
    pub prefilter: Prefilter,
    /// The advantage in pairwise comparisons given to one of two submissions by block.
    #[serde(default)]
    pub advantage: Advantage,
    pub policy: Policy,
    /// Who a submission is compared with: the other evaluated submissions (SN9, SN37), or every
    /// uid registered on the subnet, those without an evaluated submission counting as failed
    /// (SN11: win rate = wins / (registered - 1)). `registry` needs the number of registered
    /// uids (RAW.json `registered`).
    #[serde(default)]
    pub opponents: Opponents,
    /// Win rate of a submission with no opponent (SN37: 0, SN9: 1).
    #[serde(default)]
    pub lone_win_rate: f64,
    /// A submission whose total is 0 or that failed gets no weight at all (SN11: win rate -inf).
    #[serde(default)]
    pub exclude_zero: bool,
    /// EMA of this competition's weights across rounds; alpha weights the OLD value
    /// (`alpha * old + (1 - alpha) * new`; SN37 0.9, SN9 0.5). 0: no memory.
    #[serde(default)]
    pub ema_alpha: f64,
    /// Weights below this are set to 0, then the rest renormalized (SN37: 0.18).
    #[serde(default)]
    pub min_weight: f64,
    /// A fixed share of this competition's emission for one uid (owner or burn).
    pub burn: Option<Burn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Opponents {
    #[default]
    Submissions,
    Registry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Prefilter {
    #[default]
    None,
    /// SN9: keep a submission only if its total beats, by the fully decayed epsilon, every other
    /// submission committed at the same or an earlier block; the others get win rate 0.
    CompetitiveUids,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Advantage {
    /// Plain comparison.
    #[default]
    None,
    /// The earlier submission's loss is multiplied by `1 - epsilon` (taoverse FixedEpsilon).
    FixedEpsilon { epsilon: f64 },
    /// As `fixed_epsilon`, with epsilon decaying linearly from `start` to `end` over
    /// `decay_blocks` blocks after the earlier submission's block (taoverse LinearDecay).
    LinearEpsilon { start: f64, end: f64, decay_blocks: u64 },
    /// The later submission's score is multiplied by `1 - penalty` (SN11: 0.03).
    LaterPenalty { penalty: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Policy {
    /// `softmax(win_rate / temperature)` (SN9 0.01, SN11 0.075).
    Softmax { temperature: f64 },
    /// Weight 1 to every submission with the best win rate, ties split (SN37).
    WinnerTakeAll,
    /// Weights proportional to the total (higher is better only; SN34 generators).
    Proportional,
}

/// A fixed share of a competition's weight for one uid; the others are scaled by `1 - share`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Burn {
    pub uid: u16,
    pub share: f64,
}

/// A validator's configuration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidatorConfig {
    pub netuid: u16,
    /// `finney`, `test`, `local`, or a `ws://` / `wss://` endpoint.
    pub network: String,
    pub wallet: Wallet,
    /// Competition files, relative to this file.
    pub competitions: Vec<PathBuf>,
    /// Devices to evaluate on: `cpu`, `cuda`, `cuda:N`, `wgpu`.
    #[serde(default = "default_devices")]
    pub devices: Vec<String>,
    /// Plugin directories, relative to this file.
    #[serde(default)]
    pub plugin_dirs: Vec<PathBuf>,
    /// Emission shares this validator gives to the competitions it funds, by competition id.
    /// Competitions not listed get nothing; shares are renormalized over the active ones.
    pub funding: BTreeMap<String, f64>,
    /// The validator service's store (`arena validator run`): an SQLite file, relative to this
    /// file. Default: `arena-validator.sqlite` beside it.
    #[serde(default)]
    pub store: Option<PathBuf>,
    /// The validator service's cadences and limits.
    #[serde(default)]
    pub service: Service,
    /// The hub cache the validator downloads miners' models into.
    #[serde(default)]
    pub cache: Cache,
}

/// The validator's hub cache (`$HF_HUB_CACHE`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Cache {
    /// A cap on the bytes of the models in the cache: before a download, the least recently used
    /// snapshots that no running job uses are removed to make room. Absent: no cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<ByteSize>,
}

/// How `arena validator run` paces itself. Durations are in seconds; the defaults are the
/// reference validators' (taoverse: metagraph every 20 minutes, weights retried every 2 minutes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Service {
    /// Seconds between two reads of the chain's block (and, when it changed, of the
    /// commitments).
    pub poll: f64,
    /// Seconds between two metagraph syncs.
    pub metagraph: f64,
    /// Seconds before a failed weight setting is tried again.
    pub weights_retry: f64,
    /// Seconds without a new block before the chain connection is dropped and made again.
    pub stall: f64,
    /// Seconds an RPC may take before it counts as failed.
    pub rpc_timeout: f64,
    /// Blocks between two rounds of competitions seeded by a fixed value (those seeded by a
    /// sync block's hash run a round at each sync block).
    pub round_blocks: u64,
    /// Rounds missed while the validator was stopped that it runs when it starts again, oldest
    /// first; older ones are skipped (and said so).
    pub catch_up: u32,
    /// Seconds a job's lease lasts without a heartbeat (heartbeats are sent every third of it).
    pub lease: f64,
    /// Attempts of a job that failed for the machine's reasons (a crash, running out of memory,
    /// a timeout), never for the miner's (an invalid submission fails at once).
    pub attempts: u32,
    /// Seconds before a failed job's next attempt (doubled at each attempt, at most 15 minutes).
    pub retry_backoff: f64,
    /// Where `/metrics` (Prometheus), the status page `/` and its JSON `/status.json` are
    /// served, `HOST:PORT`; loopback by default, empty for none. Read-only, nothing secret.
    pub metrics: String,
    /// Rounds kept in the store (the newest); older ones go, with the results no kept round
    /// uses, so the store stays the same size however long the validator runs.
    pub keep_rounds: u32,
}

impl Default for Service {
    fn default() -> Self {
        Self {
            poll: 12.0,
            metagraph: 1200.0,
            weights_retry: 120.0,
            stall: 120.0,
            rpc_timeout: 30.0,
            round_blocks: 360,
            catch_up: 8,
            lease: 60.0,
            attempts: 2,
            retry_backoff: 30.0,
            metrics: "127.0.0.1:9464".into(),
            keep_rounds: 1000,
        }
    }
}

fn default_devices() -> Vec<String> {
    vec!["cpu".into()]
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wallet {
    pub name: String,
    pub hotkey: String,
    /// Wallet directory; default `~/.bittensor/wallets`.
    pub path: Option<PathBuf>,
}
