//! `arena chain`: read the chain, set weights as a validator, run the embedded chain.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use arena_chain::emit::{Emitter, JournalFile, Retry};
use arena_chain::local::{self, LocalChain};
use arena_chain::ss58;
use arena_core::commitment::{self, Format};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::args::{ChainArg, WalletArgs, print_json, table};

#[derive(Subcommand)]
pub enum ChainCommand {
    /// The subnet's uids: hotkeys, stake, permits, last update, consensus, incentive, dividends.
    Metagraph {
        #[command(flatten)]
        chain: ChainArg,
        #[arg(long)]
        netuid: u16,
        #[arg(long)]
        json: bool,
    },
    /// Every commitment on the subnet, parsed in a competition's format.
    Commitments {
        #[command(flatten)]
        chain: ChainArg,
        #[arg(long)]
        netuid: u16,
        /// How to read the strings (default: the competition's format, else taoverse).
        #[arg(long)]
        format: Option<Format>,
        /// A competition file: its commitment format, and which commitments are its own.
        #[arg(long, value_name = "COMPETITION.toml")]
        competition: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// The weight rows stored on the subnet (u16, as set).
    Weights {
        #[command(flatten)]
        chain: ChainArg,
        #[arg(long)]
        netuid: u16,
        #[arg(long)]
        json: bool,
    },
    /// Set weights as a validator: rate limit, commit-reveal (v2) when the subnet has it on, a
    /// journal so an epoch is never submitted twice.
    SetWeights(SetWeightsArgs),
    /// The embedded chain: create it, advance blocks (epochs run), register hotkeys.
    #[command(subcommand)]
    Local(LocalCommand),
}

#[derive(Args)]
pub struct SetWeightsArgs {
    /// A subtensor node: finney, test, local (ws://127.0.0.1:9944) or a ws:// / wss:// URL
    /// [default: the --config's network].
    #[arg(long, value_name = "NETWORK", conflicts_with = "chain")]
    network: Option<String>,
    /// The embedded chain: a chain-state file made by `arena chain local new`.
    #[arg(long, value_name = "STATE.json")]
    chain: Option<PathBuf>,
    #[command(flatten)]
    wallet: WalletArgs,
    /// The subnet [default: the --config's netuid].
    #[arg(long)]
    netuid: Option<u16>,
    /// A validator configuration: the network, netuid and wallet when not given as flags.
    #[arg(long, value_name = "VALIDATOR.toml")]
    config: Option<PathBuf>,
    /// Float weights `UID=W,UID=W,…`, converted to u16 as the bittensor SDK does.
    #[arg(long, value_name = "UID=W,…", required_unless_present = "report", conflicts_with = "report")]
    weights: Option<String>,
    /// A round report (`arena round --out`): its u16 weights are sent as they are.
    #[arg(long, value_name = "ROUND.json")]
    report: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    version_key: u64,
    /// The journal of submitted epochs.
    #[arg(long, value_name = "FILE", default_value = "weights-journal.json")]
    journal: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum LocalCommand {
    /// Create a chain state with one subnet.
    New {
        /// The file to create.
        state: PathBuf,
        #[arg(long, default_value_t = 1)]
        netuid: u16,
        #[arg(long, default_value_t = 360)]
        tempo: u16,
        /// A registered neuron `HOTKEY_SS58:COLDKEY_SS58:STAKE_RAO` (repeatable; uids in order).
        #[arg(long, value_name = "HOTKEY:COLDKEY:STAKE")]
        neuron: Vec<String>,
        /// Blocks between two weight updates of one validator.
        #[arg(long, default_value_t = 100)]
        weights_rate_limit: u64,
        /// Commit-reveal v2 for weights.
        #[arg(long)]
        commit_reveal: bool,
        /// Yuma3 bonds (subtensor's default is the legacy bonds).
        #[arg(long)]
        yuma3: bool,
        /// Make blocks with the wall clock, one every SECONDS (1 ms to an hour), as a node
        /// would; without it blocks advance only with `advance` (and one per call).
        #[arg(long, value_name = "SECONDS", value_parser = parse_block_time)]
        block_time: Option<u64>,
    },
    /// Advance blocks (at most 10,000,000 at a time); each subnet's epoch runs at its epoch blocks.
    /// On a chain with a --block-time clock the blocks come on top of the clock's.
    Advance {
        #[command(flatten)]
        chain: ChainArg,
        #[arg(long, default_value_t = 1)]
        blocks: u64,
    },
    /// Register a hotkey under the next uid.
    Register {
        #[command(flatten)]
        chain: ChainArg,
        #[arg(long)]
        netuid: u16,
        /// SS58, or a wallet's hotkey with --wallet/--hotkey.
        #[arg(long)]
        hotkey_ss58: Option<String>,
        #[arg(long)]
        coldkey_ss58: Option<String>,
        #[command(flatten)]
        wallet: WalletArgs,
        #[arg(long, default_value_t = 0)]
        stake: u64,
    },
}

pub async fn exec(cmd: ChainCommand) -> Result<ExitCode> {
    match cmd {
        ChainCommand::Metagraph { chain, netuid, json } => {
            let c = chain.open().await?;
            let m = c.metagraph(netuid).await?;
            if json {
                print_json(&m)?;
            } else {
                println!("subnet {netuid} at block {}", m.block);
                let mut t = table(vec![
                    "uid",
                    "hotkey",
                    "stake (rao)",
                    "permit",
                    "active",
                    "last update",
                    "registered",
                    "consensus",
                    "incentive",
                    "dividends",
                    "emission",
                ]);
                for n in &m.neurons {
                    t.add_row(vec![
                        n.uid.to_string(),
                        n.hotkey.clone(),
                        n.stake.to_string(),
                        n.validator_permit.to_string(),
                        n.active.to_string(),
                        n.last_update.to_string(),
                        n.block_at_registration.to_string(),
                        format!("{:.5}", n.consensus as f64 / 65535.0),
                        format!("{:.5}", n.incentive as f64 / 65535.0),
                        format!("{:.5}", n.dividends as f64 / 65535.0),
                        n.emission.to_string(),
                    ]);
                }
                println!("{t}");
            }
        }
        ChainCommand::Commitments { chain, netuid, format, competition, json } => {
            let comp = match &competition {
                Some(p) => Some(crate::args::load_competition(p)?),
                None => None,
            };
            let format = format.or(comp.as_ref().map(|c| c.commitment.format)).unwrap_or_default();
            let c = chain.open().await?;
            let mut commitments = c.commitments(netuid).await?;
            commitments.sort_by_key(|x| (x.uid.is_none(), x.uid, x.block));
            let rows: Vec<_> = commitments
                .into_iter()
                .map(|x| {
                    let parsed =
                        x.data.clone().and_then(|s| commitment::parse(format, &s).map_err(|e| e.to_string()));
                    (x, parsed)
                })
                .collect();
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(x, p)| {
                        let ours = comp.as_ref().map(|c| p.as_ref().is_ok_and(|m| c.owns(m)));
                        json!({"uid": x.uid, "hotkey": x.hotkey, "block": x.block, "data": x.data.as_ref().ok(), "parsed": p.as_ref().ok(), "error": p.as_ref().err(), "in_competition": ours})
                    })
                    .collect();
                print_json(&v)?;
            } else {
                let mut t = table(vec!["uid", "hotkey", "block", "commitment", "model"]);
                for (x, p) in &rows {
                    let model = match p {
                        Ok(m) => format!(
                            "{} (competition {})",
                            m.repo(),
                            m.competition_id.as_deref().unwrap_or("default")
                        ),
                        Err(e) => format!("unreadable: {e}"),
                    };
                    t.add_row(vec![
                        x.uid.map_or("-".into(), |u| u.to_string()),
                        x.hotkey.clone(),
                        x.block.to_string(),
                        x.data.clone().unwrap_or_else(|e| e),
                        model,
                    ]);
                }
                println!("{t}");
            }
        }
        ChainCommand::Weights { chain, netuid, json } => {
            let c = chain.open().await?;
            let w = c.weights(netuid).await?;
            if json {
                print_json(&w.iter().map(|(u, row)| json!({"uid": u, "weights": row})).collect::<Vec<_>>())?;
            } else {
                let mut t = table(vec!["uid", "weights (uid:u16)"]);
                for (u, row) in &w {
                    t.add_row(vec![
                        u.to_string(),
                        row.iter().map(|(j, v)| format!("{j}:{v}")).collect::<Vec<_>>().join(" "),
                    ]);
                }
                println!("{t}");
            }
        }
        ChainCommand::SetWeights(a) => {
            let u16s = match (&a.weights, &a.report) {
                (_, Some(report)) => report_weights(report)?,
                (Some(w), None) => {
                    arena_core::scoring::to_u16(&parse_weights(w)?).map_err(|e| anyhow::anyhow!(e))?
                }
                (None, None) => bail!("pass --weights or --report"),
            };
            let config = a.config.as_deref().map(crate::args::load_validator).transpose()?;
            let wallet = match &config {
                Some(v) => a.wallet.or_config(&v.wallet),
                None => a.wallet.wallet(),
            };
            let netuid = a.netuid.or(config.as_ref().map(|v| v.netuid)).context("--netuid: which subnet")?;
            let network = match (&a.chain, &a.network, &config) {
                (None, None, Some(v)) => Some(v.network.clone()),
                _ => a.network.clone(),
            };
            let signer = wallet.hotkey()?;
            let mut c = ChainArg { chain: a.chain.clone(), network }.open().await?;
            let mut journal = JournalFile(a.journal.clone());
            let mut emitter = Emitter {
                chain: c.as_mut(),
                signer: &signer,
                netuid,
                journal: &mut journal,
                retry: Retry::default(),
            };
            let out = emitter.emit(&u16s, a.version_key).await?;
            if a.json {
                print_json(&json!({"weights": u16s, "outcome": out}))?;
            } else {
                println!(
                    "u16 weights: {}",
                    u16s.iter().map(|(u, v)| format!("{u}:{v}")).collect::<Vec<_>>().join(" ")
                );
                println!("{out}");
            }
        }
        ChainCommand::Local(cmd) => local_cmd(cmd)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The u16 weights of a round report (`weights[].u16`, zeros left out as the round sends them).
fn report_weights(path: &std::path::Path) -> Result<Vec<(u16, u16)>> {
    #[derive(serde::Deserialize)]
    struct Weight {
        uid: u16,
        u16: u16,
    }
    #[derive(serde::Deserialize)]
    struct Report {
        weights: Vec<Weight>,
    }
    let text = arena_runtime::files::read_json_text(path)?;
    let r: Report = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text))
        .map_err(|e| anyhow::anyhow!("{}: {}: {}", path.display(), e.path(), e.inner()))?;
    Ok(r.weights.into_iter().filter(|w| w.u16 != 0).map(|w| (w.uid, w.u16)).collect())
}

/// `--block-time SECONDS` in whole milliseconds: finite, positive, at most an hour, at least 1 ms.
fn parse_block_time(s: &str) -> Result<u64, String> {
    let t: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(t.is_finite() && t > 0.0) {
        return Err(format!("{t} is not a positive number of seconds"));
    }
    if t > local::MAX_BLOCK_TIME_MS as f64 / 1e3 {
        return Err(format!("{t} seconds is more than an hour, the longest block time"));
    }
    let ms = (t * 1e3).round();
    if ms < 1.0 {
        return Err(format!("{t} seconds is less than a millisecond, the shortest block time"));
    }
    Ok(ms as u64)
}

/// `UID=W,UID=W,…`: each uid once, each weight a finite, non-negative number.
fn parse_weights(s: &str) -> Result<std::collections::BTreeMap<u16, f64>> {
    let mut out = std::collections::BTreeMap::new();
    for p in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (u, w) = p.split_once('=').with_context(|| format!("--weights: {p:?}: expected UID=WEIGHT"))?;
        let uid: u16 =
            u.trim().parse().with_context(|| format!("--weights: {u:?} is not a uid (0..=65535)"))?;
        let weight: f64 = w.trim().parse().with_context(|| format!("--weights: {w:?} is not a number"))?;
        if !weight.is_finite() || weight < 0.0 {
            bail!("--weights: uid {uid}: the weight {w:?} must be a finite, non-negative number");
        }
        if out.insert(uid, weight).is_some() {
            bail!("--weights: uid {uid} is given twice");
        }
    }
    Ok(out)
}

fn local_cmd(cmd: LocalCommand) -> Result<()> {
    match cmd {
        LocalCommand::New {
            state,
            netuid,
            tempo,
            neuron,
            weights_rate_limit,
            commit_reveal,
            yuma3,
            block_time,
        } => {
            let neurons = neuron
                .iter()
                .map(|spec| {
                    let parts: Vec<&str> = spec.split(':').collect();
                    let [h, c, s] = parts[..] else {
                        bail!("--neuron {spec:?}: expected HOTKEY:COLDKEY:STAKE")
                    };
                    ss58::decode(h).context("hotkey")?;
                    ss58::decode(c).context("coldkey")?;
                    Ok((h.to_string(), c.to_string(), s.parse().with_context(|| format!("stake {s:?}"))?))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut st = local::new_subnet(netuid, tempo, &neurons);
            let subnet = st.subnets.get_mut(&netuid).expect("created");
            subnet.weights_rate_limit = weights_rate_limit;
            subnet.commit_reveal = commit_reveal;
            subnet.yuma.yuma3 = yuma3;
            if let Some(ms) = block_time {
                st.clock = Some(local::Clock::starting_now(ms, st.block)?);
            }
            LocalChain::create(&state, st)?;
            let clock = block_time.map(|ms| format!(", a block every {ms} ms")).unwrap_or_default();
            println!(
                "created {} with subnet {netuid} ({} uids, tempo {tempo}{clock})",
                state.display(),
                neurons.len()
            );
        }
        LocalCommand::Advance { chain, blocks } => {
            let mut c = chain.local()?;
            let ran = c.advance(blocks)?;
            for (netuid, block) in &ran {
                println!("epoch of subnet {netuid} at block {block}");
            }
            println!("block {}", c.state.block);
        }
        LocalCommand::Register { chain, netuid, hotkey_ss58, coldkey_ss58, wallet, stake } => {
            let mut c = chain.local()?;
            let w = wallet.wallet();
            let hotkey = match hotkey_ss58 {
                Some(h) => h,
                None => w.hotkey()?.ss58(),
            };
            let coldkey = match coldkey_ss58 {
                Some(c) => c,
                None if w.coldkeypub_path().exists() => w.coldkey_ss58()?,
                None => {
                    println!(
                        "no {}: the hotkey's address stands for the coldkey",
                        w.coldkeypub_path().display()
                    );
                    hotkey.clone()
                }
            };
            let uid = c.register(netuid, &hotkey, &coldkey, stake)?;
            println!("registered {hotkey} as uid {uid} on subnet {netuid} at block {}", c.state.block);
        }
    }
    Ok(())
}
