//! Semantic checks of competitions and validator configurations, beyond what the types say.
//! Every finding names its file, line, column and field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use arena_plugin_api::{Device, TaskKindInfo};

use super::source::{Parsed, join};
use super::{
    Advantage, Aggregate, Competition, Direction, Normalization, Policy, Prefilter, SeedPolicy,
    ValidatorConfig,
};
use crate::diag::{Diagnostic, Severity, closest};
use crate::scoring::formula::Formula;
use crate::scoring::{is_close, normalized_direction};

const ERROR: Severity = Severity::Error;
const WARNING: Severity = Severity::Warning;

/// A competition file listed by a validator configuration, loaded or not.
pub type ListedCompetition = (PathBuf, Result<Parsed<Competition>, Diagnostic>);

/// What the checks of a validator configuration need from the file system: its listed
/// competition files and plugin directories. The runtime reads the disk; tests may not.
pub trait Files {
    /// A competition file, read and parsed; an unreadable or malformed file gives one diagnostic.
    #[allow(clippy::result_large_err)] // a diagnostic is built once per failed file
    fn competition(&self, path: &Path) -> Result<Parsed<Competition>, Diagnostic>;
    fn is_file(&self, path: &Path) -> bool;
    fn is_dir(&self, path: &Path) -> bool;
}

/// What the checker may ask about installed plugins.
pub enum KindLookup<'a> {
    /// No plugin of that name is installed.
    NoPlugin,
    /// The plugin is installed but has no such task kind.
    NoKind {
        available: Vec<String>,
    },
    Found(&'a TaskKindInfo),
}

pub trait PluginCatalog {
    fn lookup(&self, plugin: &str, kind: &str) -> KindLookup<'_>;
    /// Where plugins were searched, for messages.
    fn searched(&self) -> String;
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
}

fn unit_interval(x: f64) -> bool {
    (0.0..=1.0).contains(&x)
}

/// The checks of one competition on its own.
pub fn check_competition(file: &Parsed<Competition>) -> Vec<Diagnostic> {
    let c = &file.value;
    let mut out = Vec::new();
    let mut err = |field: &str, msg: String, hint: Option<&str>| {
        out.push(file.at(ERROR, field, msg, hint.map(str::to_string)));
    };

    if !is_slug(&c.id) {
        err("id", format!("`{}` is not a valid id", c.id), Some("use lower-case letters, digits and `-`"));
    }
    if c.name.trim().is_empty() {
        err("name", "the name is empty".into(), None);
    }
    if !(c.emission_share > 0.0 && c.emission_share <= 1.0) {
        err("emission_share", format!("{} is not in (0, 1]", c.emission_share), None);
    }
    if let Some(until) = c.schedule.until_block
        && until <= c.schedule.from_block
    {
        err(
            "schedule.until_block",
            format!("until_block {until} is not after from_block {}", c.schedule.from_block),
            Some("the competition is active for from_block <= block < until_block"),
        );
    }

    if c.schedule.keep == Some(0) {
        err(
            "schedule.keep",
            "keep = 0 would evaluate only new submissions and drop every leader".into(),
            Some(
                "keep the N best of the last round (SN37: 3, SN9: 5), or leave it out to evaluate every submission",
            ),
        );
    }

    if let Some(Err(e)) = c.limits.timeout.map(crate::units::seconds) {
        err("limits.timeout", e, None);
    }
    if c.limits.memory.is_some_and(|m| m.0 == 0) {
        err("limits.memory", "a memory limit of 0 bytes".into(), None);
    }

    let k = &c.constraints;
    if let (Some(lo), Some(hi)) = (k.min_parameters, k.max_parameters)
        && lo > hi
    {
        err("constraints.min_parameters", format!("min_parameters {lo} is above max_parameters {hi}"), None);
    }
    if let (Some(lo), Some(hi)) = (k.min_bytes, k.max_bytes)
        && lo.0 > hi.0
    {
        err("constraints.min_bytes", format!("min_bytes {} is above max_bytes {}", lo.0, hi.0), None);
    }
    if k.max_bytes.is_some_and(|b| b.0 == 0) {
        err("constraints.max_bytes", "max_bytes is 0: no submission could pass".into(), None);
    }
    if k.sequence_length == Some(0) {
        err("constraints.sequence_length", "sequence_length is 0".into(), None);
    }
    let mut seen = BTreeSet::new();
    for (i, a) in k.architectures.iter().enumerate() {
        if !seen.insert(a) {
            err(&format!("constraints.architectures[{i}]"), format!("`{a}` is listed twice"), None);
        }
    }
    if let SeedPolicy::SyncBlockHash { cadence: 0, .. } = c.data.seed {
        err("data.seed.cadence", "cadence is 0".into(), Some("the sync block is a multiple of the cadence"));
    }

    check_tasks(file, &mut out);
    check_ranking(file, &mut out);
    out
}

fn check_tasks(file: &Parsed<Competition>, out: &mut Vec<Diagnostic>) {
    let c = &file.value;
    let mut err = |sev: Severity, field: &str, msg: String, hint: Option<String>| {
        out.push(file.at(sev, field, msg, hint));
    };
    if c.tasks.is_empty() {
        err(
            ERROR,
            "tasks",
            "a competition needs at least one task".into(),
            Some("add a [[tasks]] table".into()),
        );
        return;
    }
    let weighted_sum = matches!(c.score.aggregate, Aggregate::WeightedSum);
    let mut names = BTreeSet::new();
    let mut weight_sum = 0.0;
    let mut weights_ok = true;
    for (i, t) in c.tasks.iter().enumerate() {
        let at = |f: &str| format!("tasks[{i}].{f}");
        if !is_identifier(&t.name) {
            err(
                ERROR,
                &at("name"),
                format!("task name `{}` is not an identifier", t.name),
                Some(
                    "use letters, digits and `_`, not starting with a digit (names are formula variables)"
                        .into(),
                ),
            );
        }
        if !names.insert(t.name.as_str()) {
            err(ERROR, &at("name"), format!("task name `{}` is used twice", t.name), None);
        }
        if t.samples == Some(0) {
            err(ERROR, &at("samples"), "samples is 0".into(), None);
        }
        if let Some(p) = t.pages {
            if t.samples.is_some() {
                err(ERROR, &at("pages"), "give `samples` or `pages`, not both".into(), None);
            }
            if p.count == 0 || p.rows == 0 {
                err(ERROR, &at("pages"), format!("{} pages of {} rows draw nothing", p.count, p.rows), None);
            }
        }
        if (t.samples.is_some() || t.pages.is_some()) && t.dataset.is_none() {
            err(
                ERROR,
                &at(if t.samples.is_some() { "samples" } else { "pages" }),
                "samples are drawn from the task's dataset, and it names none".into(),
                Some("add `dataset`".into()),
            );
        }
        match (weighted_sum, t.weight) {
            (true, None) => {
                weights_ok = false;
                err(
                    ERROR,
                    &at("weight"),
                    "a weighted_sum aggregate needs a weight on every task".into(),
                    None,
                );
            }
            (true, Some(w)) if !(w > 0.0 && w.is_finite()) => {
                weights_ok = false;
                err(
                    ERROR,
                    &at("weight"),
                    format!("weight {w} must be a positive, finite number"),
                    (w == 0.0).then(|| "remove the task instead of giving it weight 0".to_string()),
                );
            }
            (true, Some(w)) => weight_sum += w,
            (false, Some(_)) => err(
                WARNING,
                &at("weight"),
                "weight is unused: the aggregate is a formula".into(),
                Some("write the weight into score.aggregate.expr".into()),
            ),
            (false, None) => {}
        }
        check_normalization(&t.normalization, &at("normalization"), &mut err);
        if let Some(g) = &t.gate {
            match (g.min, g.max) {
                (None, None) => err(ERROR, &at("gate"), "a gate needs `min` or `max`".into(), None),
                (Some(lo), Some(hi)) if lo > hi => {
                    err(ERROR, &at("gate"), format!("gate min {lo} is above max {hi}: nothing passes"), None)
                }
                _ => {}
            }
        }
        if weighted_sum {
            let nd = normalized_direction(t.direction, &t.normalization);
            if nd != c.score.direction {
                err(
                    ERROR,
                    &at("direction"),
                    format!(
                        "task `{}` is {}-is-better after normalization, but the competition's total is {}-is-better",
                        t.name,
                        dir(nd),
                        dir(c.score.direction)
                    ),
                    Some("flip it with an `affine` normalization of negative scale, or use a formula".into()),
                );
            }
        }
    }
    if weighted_sum && weights_ok && !is_close(weight_sum, 1.0) {
        err(
            WARNING,
            "tasks",
            format!("task weights sum to {weight_sum}, not 1; they are renormalized"),
            None,
        );
    }
    if let Aggregate::Formula { expr } = &c.score.aggregate {
        check_formula(expr, c, &mut err);
    }
}

fn dir(d: Direction) -> &'static str {
    match d {
        Direction::Lower => "lower",
        Direction::Higher => "higher",
    }
}

fn check_normalization(
    n: &Normalization,
    field: &str,
    err: &mut impl FnMut(Severity, &str, String, Option<String>),
) {
    match *n {
        Normalization::None => {}
        Normalization::InverseExponential { ceiling } => {
            if !(ceiling > 0.0 && ceiling.is_finite()) {
                err(ERROR, &format!("{field}.ceiling"), format!("ceiling {ceiling} must be positive"), None);
            }
        }
        Normalization::MinMax { min, max } => {
            if min == max || !min.is_finite() || !max.is_finite() {
                err(ERROR, field, format!("min {min} and max {max} must be finite and differ"), None);
            }
        }
        Normalization::Affine { scale, offset, clamp } => {
            if scale == 0.0 || !scale.is_finite() || !offset.is_finite() {
                err(
                    ERROR,
                    &format!("{field}.scale"),
                    format!("scale {scale} must be finite and non-zero"),
                    None,
                );
            }
            if let Some([lo, hi]) = clamp
                && lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less)
            {
                err(ERROR, &format!("{field}.clamp"), format!("clamp [{lo}, {hi}] needs lo < hi"), None);
            }
        }
    }
}

fn check_formula(expr: &str, c: &Competition, err: &mut impl FnMut(Severity, &str, String, Option<String>)) {
    let field = "score.aggregate.expr";
    let formula = match Formula::compile(expr, c.tasks.len()) {
        Ok(f) => f,
        Err(e) => return err(ERROR, field, e, Some("the formula is a CEL expression".into())),
    };
    let names: Vec<&str> = c.tasks.iter().map(|t| t.name.as_str()).collect();
    let mut unknown = false;
    for var in formula.variables() {
        if var != "raw" && !names.contains(&var.as_str()) {
            unknown = true;
            let hint = match closest(&var, names.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("variables are the task names ({}) and `raw`", names.join(", ")),
            };
            err(ERROR, field, format!("the formula reads `{var}`, which is not a task"), Some(hint));
        }
    }
    if unknown {
        return;
    }
    // Probe: every task at 0.5 must give a number (catches type errors such as `8 * x`).
    let probe: BTreeMap<&str, f64> = names.iter().map(|n| (*n, 0.5)).collect();
    if let Err(e) = formula.eval(&probe, &probe) {
        err(ERROR, field, format!("the formula fails with every task at 0.5: {e}"), None);
    }
}

fn check_ranking(file: &Parsed<Competition>, out: &mut Vec<Diagnostic>) {
    let c = &file.value;
    let r = &c.ranking;
    let lower = c.score.direction == Direction::Lower;
    let mut err = |field: &str, msg: String, hint: Option<&str>| {
        out.push(file.at(ERROR, field, msg, hint.map(str::to_string)));
    };
    let eps_hint = Some("epsilon is a fraction of a loss: 0 <= epsilon < 1");
    match r.advantage {
        Advantage::FixedEpsilon { epsilon } => {
            if !(0.0..1.0).contains(&epsilon) {
                err("ranking.advantage.epsilon", format!("epsilon {epsilon} is not in [0, 1)"), eps_hint);
            }
        }
        Advantage::LinearEpsilon { start, end, decay_blocks } => {
            if !(0.0..1.0).contains(&start) {
                err("ranking.advantage.start", format!("start {start} is not in [0, 1)"), eps_hint);
            }
            if !(0.0..1.0).contains(&end) {
                err("ranking.advantage.end", format!("end {end} is not in [0, 1)"), eps_hint);
            } else if end > start {
                err(
                    "ranking.advantage.end",
                    format!("end {end} is above start {start}: epsilon would grow"),
                    Some("a linear decay goes from start down to end"),
                );
            }
            if decay_blocks == 0 {
                err("ranking.advantage.decay_blocks", "decay_blocks is 0".into(), None);
            }
        }
        Advantage::LaterPenalty { penalty } => {
            if !(0.0..1.0).contains(&penalty) {
                err("ranking.advantage.penalty", format!("penalty {penalty} is not in [0, 1)"), None);
            }
        }
        Advantage::None => {}
    }
    let epsilon = matches!(r.advantage, Advantage::FixedEpsilon { .. } | Advantage::LinearEpsilon { .. });
    if epsilon && !lower {
        err(
            "ranking.advantage.kind",
            "an epsilon advantage discounts the earlier submission's loss: it needs score.direction = \"lower\"".into(),
            Some("for higher-is-better totals use `later_penalty`"),
        );
    }
    if matches!(r.advantage, Advantage::LaterPenalty { .. }) && lower {
        err(
            "ranking.advantage.kind",
            "a later-block penalty multiplies the later submission's score: it needs score.direction = \"higher\"".into(),
            Some("for losses use `linear_epsilon` or `fixed_epsilon`"),
        );
    }
    if r.prefilter == Prefilter::CompetitiveUids && !(epsilon && lower) {
        err(
            "ranking.prefilter",
            "the competitive_uids prefilter needs an epsilon advantage and score.direction = \"lower\""
                .into(),
            None,
        );
    }
    match r.policy {
        Policy::Softmax { temperature } if !(temperature > 0.0 && temperature.is_finite()) => {
            err("ranking.policy.temperature", format!("temperature {temperature} must be positive"), None)
        }
        Policy::Proportional if lower => err(
            "ranking.policy.kind",
            "a proportional policy needs score.direction = \"higher\"".into(),
            Some("weights are proportional to the total"),
        ),
        _ => {}
    }
    if !unit_interval(r.lone_win_rate) {
        err("ranking.lone_win_rate", format!("{} is not in [0, 1]", r.lone_win_rate), None);
    }
    if !(0.0..1.0).contains(&r.ema_alpha) {
        err(
            "ranking.ema_alpha",
            format!("{} is not in [0, 1)", r.ema_alpha),
            Some("alpha weights the old value; 1 would never move"),
        );
    }
    if !(0.0..1.0).contains(&r.min_weight) {
        err("ranking.min_weight", format!("{} is not in [0, 1)", r.min_weight), None);
    }
    if let Some(b) = r.burn
        && !unit_interval(b.share)
    {
        err("ranking.burn.share", format!("{} is not in [0, 1]", b.share), None);
    }
    if let Some(f) = c.score.failure_score
        && f.is_nan()
    {
        err("score.failure_score", "failure_score is NaN".into(), None);
    }
}

/// Checks across several competitions: unique ids; and among the files of one subnet, no two
/// schedules of one on-chain id overlapping, and the emission shares at every schedule boundary.
pub fn check_together(files: &[&Parsed<Competition>]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, a) in files.iter().enumerate() {
        for b in &files[..i] {
            let same_subnet = a.value.netuid == b.value.netuid;
            if a.value.id == b.value.id {
                out.push(a.at(
                    ERROR,
                    "id",
                    format!("id `{}` is also used by {}", a.value.id, b.source.path.display()),
                    None,
                ));
            } else if same_subnet && a.value.competition_id == b.value.competition_id && overlap(a, b) {
                out.push(a.at(
                    ERROR,
                    "schedule",
                    format!(
                        "competition_id {} is also active in {} during blocks {}",
                        a.value.competition_id,
                        b.source.path.display(),
                        window(&a.value, &b.value)
                    ),
                    Some("one on-chain competition id may be active in one file at a time".into()),
                ));
            }
        }
    }
    let subnets: BTreeSet<Option<u16>> = files.iter().map(|f| f.value.netuid).collect();
    for netuid in subnets {
        let files: Vec<&&Parsed<Competition>> = files.iter().filter(|f| f.value.netuid == netuid).collect();
        if files.len() < 2 {
            continue;
        }
        let mut boundaries: BTreeSet<u64> = BTreeSet::new();
        for f in &files {
            boundaries.insert(f.value.schedule.from_block);
            boundaries.extend(f.value.schedule.until_block);
        }
        for block in boundaries {
            let active: Vec<_> = files.iter().filter(|f| f.value.schedule.is_active(block)).collect();
            let sum: f64 = active.iter().map(|f| f.value.emission_share).sum();
            if !active.is_empty() && !is_close(sum, 1.0) {
                let first = active[0];
                out.push(first.at(
                    WARNING,
                    "emission_share",
                    format!(
                        "at block {block} the active competitions ({}) have emission shares summing to {sum}; they are renormalized",
                        active.iter().map(|f| f.value.id.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                    None,
                ));
            }
        }
    }
    out
}

fn overlap(a: &Parsed<Competition>, b: &Parsed<Competition>) -> bool {
    let (a, b) = (&a.value.schedule, &b.value.schedule);
    let a_end = a.until_block.unwrap_or(u64::MAX);
    let b_end = b.until_block.unwrap_or(u64::MAX);
    a.from_block < b_end && b.from_block < a_end
}

fn window(a: &Competition, b: &Competition) -> String {
    let from = a.schedule.from_block.max(b.schedule.from_block);
    match (a.schedule.until_block, b.schedule.until_block) {
        (None, None) => format!("{from}.."),
        (x, y) => format!("{from}..{}", x.unwrap_or(u64::MAX).min(y.unwrap_or(u64::MAX))),
    }
}

/// Checks each task against the installed plugins: a missing plugin or kind is a warning; params
/// rejected by the kind's JSON Schema are errors.
pub fn check_plugins(file: &Parsed<Competition>, catalog: &dyn PluginCatalog) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, t) in file.value.tasks.iter().enumerate() {
        match catalog.lookup(&t.plugin, &t.kind) {
            KindLookup::NoPlugin => out.push(file.at(
                WARNING,
                &format!("tasks[{i}].plugin"),
                format!("plugin `{}` is not installed; task `{}` cannot run here", t.plugin, t.name),
                Some(format!("searched {}; pass --plugin-dir", catalog.searched())),
            )),
            KindLookup::NoKind { available } => out.push(file.at(
                WARNING,
                &format!("tasks[{i}].kind"),
                format!("plugin `{}` has no task kind `{}`", t.plugin, t.kind),
                Some(match closest(&t.kind, available.iter().map(String::as_str)) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("it has: {}", available.join(", ")),
                }),
            )),
            KindLookup::Found(kind) => {
                let params = serde_json::Value::Object(t.params.clone());
                for (path, message) in schema_errors(&kind.params_schema, &params) {
                    let field = path.iter().fold(format!("tasks[{i}].params"), |acc, seg| join(&acc, seg));
                    out.push(file.at(
                        ERROR,
                        &field,
                        format!("rejected by {}'s schema for `{}`: {message}", t.plugin, t.kind),
                        Some(format!("`arena plugins inspect` shows the schema of `{}`", t.kind)),
                    ));
                }
            }
        }
    }
    out
}

/// Why `schema` is not a valid JSON Schema (checked against its meta-schema); none if it is.
pub fn schema_invalid(schema: &serde_json::Value) -> Option<String> {
    jsonschema::validator_for(schema).err().map(|e| format!("not a valid JSON Schema: {e}"))
}

/// Validates `value` against a JSON Schema; each error as (instance path segments, message).
pub fn schema_errors(schema: &serde_json::Value, value: &serde_json::Value) -> Vec<(Vec<String>, String)> {
    let validator = match jsonschema::validator_for(schema) {
        Ok(v) => v,
        Err(e) => return vec![(Vec::new(), format!("the plugin's schema is invalid: {e}"))],
    };
    validator
        .iter_errors(value)
        .map(|e| {
            let path = e.instance_path().to_string();
            let segments =
                path.split('/').filter(|s| !s.is_empty()).map(|s| s.replace("~1", "/").replace("~0", "~"));
            (segments.collect(), e.to_string())
        })
        .collect()
}

/// The checks of a validator configuration. Its competition files are loaded and returned (for
/// their own checks); a file that does not load is reported at its entry.
pub fn check_validator(
    file: &Parsed<ValidatorConfig>,
    files: &dyn Files,
) -> (Vec<Diagnostic>, Vec<ListedCompetition>) {
    let v = &file.value;
    let mut out = Vec::new();
    let mut err = |sev: Severity, field: &str, msg: String, hint: Option<String>| {
        out.push(file.at(sev, field, msg, hint));
    };
    let network_ok = matches!(v.network.as_str(), "finney" | "test" | "local")
        || v.network.starts_with("ws://")
        || v.network.starts_with("wss://");
    if !network_ok {
        err(
            ERROR,
            "network",
            format!("unknown network `{}`", v.network),
            Some("use finney, test, local, or a ws:// or wss:// endpoint".into()),
        );
    }
    if v.wallet.name.trim().is_empty() {
        err(ERROR, "wallet.name", "the wallet name is empty".into(), None);
    }
    if v.wallet.hotkey.trim().is_empty() {
        err(ERROR, "wallet.hotkey", "the hotkey name is empty".into(), None);
    }
    for (i, d) in v.devices.iter().enumerate() {
        if let Err(e) = d.parse::<Device>() {
            err(ERROR, &format!("devices[{i}]"), e.to_string(), Some("cpu, cuda, cuda:N or wgpu".into()));
        }
    }
    let base = file.source.path.parent().unwrap_or(Path::new(".")).to_path_buf();
    for (i, dir) in v.plugin_dirs.iter().enumerate() {
        if !files.is_dir(&base.join(dir)) {
            err(WARNING, &format!("plugin_dirs[{i}]"), format!("{} is not a directory", dir.display()), None);
        }
    }
    if v.competitions.is_empty() {
        err(ERROR, "competitions", "no competition files are listed".into(), None);
    }
    let mut loaded = Vec::new();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for (i, rel) in v.competitions.iter().enumerate() {
        let path = base.join(rel);
        let result = files.competition(&path);
        match &result {
            Err(_) if !files.is_file(&path) => err(
                ERROR,
                &format!("competitions[{i}]"),
                format!("competition file {} does not exist", path.display()),
                Some("paths are relative to this file".into()),
            ),
            Err(_) => err(
                ERROR,
                &format!("competitions[{i}]"),
                format!("competition file {} does not load (see its own error)", path.display()),
                None,
            ),
            Ok(c) => {
                if let Some(j) = ids.insert(c.value.id.clone(), i) {
                    err(
                        ERROR,
                        &format!("competitions[{i}]"),
                        format!(
                            "competition `{}` is listed twice: competitions[{j}] ({}) defines it too",
                            c.value.id,
                            v.competitions[j].display()
                        ),
                        Some(
                            "list each competition once; its funding share is given once under [funding]"
                                .into(),
                        ),
                    );
                }
                if let Some(n) = c.value.netuid.filter(|n| *n != v.netuid) {
                    err(
                        ERROR,
                        &format!("competitions[{i}]"),
                        format!(
                            "competition `{}` belongs to netuid {n}, but this validator runs netuid {}",
                            c.value.id, v.netuid
                        ),
                        None,
                    );
                }
            }
        }
        loaded.push((path, result));
    }
    let all_loaded = loaded.iter().all(|(_, r)| r.is_ok());
    let mut total = 0.0;
    let mut shares_ok = true;
    for (id, &share) in &v.funding {
        let field = join("funding", id);
        if !(share >= 0.0 && share.is_finite()) {
            shares_ok = false;
            err(ERROR, &field, format!("share {share} must be a non-negative number"), None);
        } else {
            total += share;
        }
        if all_loaded && !ids.contains_key(id) {
            let hint = match closest(id, ids.keys().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`?"),
                None if ids.is_empty() => "no competition file is listed".to_string(),
                None => {
                    format!("listed competitions: {}", ids.keys().cloned().collect::<Vec<_>>().join(", "))
                }
            };
            err(
                ERROR,
                &field,
                format!("funds `{id}`, which none of the competition files defines"),
                Some(hint),
            );
        }
    }
    if v.funding.is_empty() {
        err(
            ERROR,
            "funding",
            "the validator funds no competition".into(),
            Some("add `[funding]` with `<competition id> = <share>`".into()),
        );
    } else if shares_ok && total == 0.0 {
        err(ERROR, "funding", "every funding share is 0".into(), None);
    } else if shares_ok && !is_close(total, 1.0) {
        err(WARNING, "funding", format!("funding shares sum to {total}; they are renormalized"), None);
    }
    for (id, &i) in &ids {
        if !v.funding.contains_key(id) {
            err(
                WARNING,
                &format!("competitions[{i}]"),
                format!("competition `{id}` is listed but not funded: it gets nothing"),
                None,
            );
        }
    }
    let service = &v.service;
    let durations = [
        ("poll", service.poll),
        ("metagraph", service.metagraph),
        ("weights_retry", service.weights_retry),
        ("stall", service.stall),
        ("rpc_timeout", service.rpc_timeout),
        ("lease", service.lease),
        ("retry_backoff", service.retry_backoff),
    ];
    for (name, secs) in durations {
        if let Err(e) = crate::units::seconds(secs) {
            err(ERROR, &format!("service.{name}"), e, None);
        }
    }
    if service.round_blocks == 0 {
        err(ERROR, "service.round_blocks", "a round every 0 blocks: give at least 1".into(), None);
    }
    if service.attempts == 0 {
        err(ERROR, "service.attempts", "0 attempts would never run a job: give at least 1".into(), None);
    }
    if service.keep_rounds < 2 {
        err(
            ERROR,
            "service.keep_rounds",
            "keep at least 2 rounds (the running one and the last scored)".into(),
            None,
        );
    }
    if service.catch_up == 0 {
        err(ERROR, "service.catch_up", "give at least 1 (the current round)".into(), None);
    }
    if !service.metrics.is_empty() {
        match service.metrics.parse::<std::net::SocketAddr>() {
            Err(_) => err(
                ERROR,
                "service.metrics",
                format!("`{}` is not an address HOST:PORT", service.metrics),
                Some("e.g. 127.0.0.1:9464; an empty string serves no metrics".into()),
            ),
            Ok(a) if !a.ip().is_loopback() => err(
                WARNING,
                "service.metrics",
                format!("`{}` serves the metrics beyond this machine", service.metrics),
                None,
            ),
            Ok(_) => {}
        }
    }
    if v.cache.max_bytes.is_some_and(|b| b.0 == 0) {
        err(ERROR, "cache.max_bytes", "max_bytes is 0: no model could be downloaded".into(), None);
    }
    if service.lease.is_finite() && service.lease < 0.1 {
        err(
            ERROR,
            "service.lease",
            format!("a lease of {} s is shorter than a heartbeat can keep (at least 0.1 s)", service.lease),
            None,
        );
    }
    (out, loaded)
}
