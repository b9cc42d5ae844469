//! `arena chain`, `arena commit` and `arena wallet`: the chain from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use arena_chain::emit::{Emitter, Retry};
use arena_chain::local::{self, LocalChain};
use arena_chain::subtensor::Subtensor;
use arena_chain::wallet::{Keypair, Wallet};
use arena_chain::{Call, Chain, ss58};
use arena_core::commitment::{self, Format, ModelCommitment};
use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct ChainArg {
    /// A subtensor node: finney, test, local (ws://127.0.0.1:9944) or a ws:// / wss:// URL.
    #[arg(long, value_name = "NETWORK")]
    pub network: Option<String>,
    /// The embedded chain: a chain-state file made by `arena chain local new`.
    #[arg(long, value_name = "STATE.json")]
    pub chain: Option<PathBuf>,
}

impl ChainArg {
    pub fn open(&self) -> Result<Box<dyn Chain>> {
        match (&self.network, &self.chain) {
            (Some(n), _) => Ok(Box::new(Subtensor::connect(n, tokio_runtime()?)?)),
            (None, Some(path)) => Ok(Box::new(LocalChain::open(path)?)),
            (None, None) => bail!("pass --network or --chain"),
        }
    }

    fn local(&self) -> Result<LocalChain> {
        match &self.chain {
            Some(path) => LocalChain::open(path),
            None => bail!("this command runs on the embedded chain only (--chain STATE.json)"),
        }
    }
}

/// The process's tokio runtime, made on first use (the chain client blocks on it).
fn tokio_runtime() -> Result<tokio::runtime::Handle> {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt.handle().clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(RT.get_or_init(|| rt).handle().clone())
}

#[derive(Args)]
pub struct WalletArgs {
    /// Wallet name (a directory under --wallet-path).
    #[arg(long, default_value = "default")]
    pub wallet: String,
    /// Hotkey name (a file under WALLET/hotkeys).
    #[arg(long, default_value = "default")]
    pub hotkey: String,
    /// Wallets directory [default: $BT_WALLET_PATH or ~/.bittensor/wallets].
    #[arg(long, value_name = "DIR")]
    pub wallet_path: Option<PathBuf>,
}

impl WalletArgs {
    pub fn wallet(&self) -> Wallet {
        Wallet::new(self.wallet_path.clone(), &self.wallet, &self.hotkey)
    }
}

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
    #[command(flatten)]
    chain: ChainArg,
    #[command(flatten)]
    wallet: WalletArgs,
    #[arg(long)]
    netuid: u16,
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
    },
    /// Advance blocks; each subnet's epoch runs every tempo + 1 blocks.
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

#[derive(Args)]
pub struct CommitArgs {
    #[command(flatten)]
    chain: ChainArg,
    #[command(flatten)]
    wallet: WalletArgs,
    #[arg(long)]
    netuid: u16,
    /// The competition's commitment format.
    #[arg(long, default_value = "taoverse")]
    format: Format,
    /// The Hugging Face repository `namespace/name`.
    #[arg(long)]
    repo: String,
    /// The repository's git revision (taoverse formats).
    #[arg(long)]
    revision: Option<String>,
    /// The model directory, for taoverse's directory hash.
    #[arg(long, value_name = "DIR")]
    model_dir: Option<PathBuf>,
    /// The chat template (SN11).
    #[arg(long)]
    chat_template: Option<String>,
    #[arg(long)]
    competition_id: Option<String>,
    /// Print the string and its call data without submitting.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Subcommand)]
pub enum WalletCommand {
    /// Create a hotkey (unencrypted, as btcli writes hotkeys, with its HOTKEYpub.txt) from a
    /// random or given seed.
    NewHotkey {
        #[command(flatten)]
        wallet: WalletArgs,
        /// A 32-byte hex seed (deterministic keys for tests and demos).
        #[arg(long, value_name = "HEX")]
        seed: Option<String>,
        /// Print JSON: {"path", "hotkey"}.
        #[arg(long)]
        json: bool,
    },
    /// A wallet's hotkey and coldkey addresses.
    Show {
        #[command(flatten)]
        wallet: WalletArgs,
        /// Print JSON: {"hotkey", "coldkey"} (coldkey null when unreadable, with "coldkey_error").
        #[arg(long)]
        json: bool,
    },
}

fn table(header: Vec<&str>) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header);
    t
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn chain(cmd: ChainCommand) -> Result<ExitCode> {
    match cmd {
        ChainCommand::Metagraph { chain, netuid, json } => {
            let c = chain.open()?;
            let m = c.metagraph(netuid)?;
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
                Some(p) => Some(crate::load_competition(p)?),
                None => None,
            };
            let format = format.or(comp.as_ref().map(|c| c.commitment.format)).unwrap_or_default();
            let c = chain.open()?;
            let mut commitments = c.commitments(netuid)?;
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
            let c = chain.open()?;
            let w = c.weights(netuid)?;
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
            let signer = a.wallet.wallet().hotkey()?;
            let mut c = a.chain.open()?;
            let mut emitter = Emitter {
                chain: c.as_mut(),
                signer: &signer,
                netuid: a.netuid,
                journal: a.journal.clone(),
                retry: Retry::default(),
            };
            let out = emitter.emit(&u16s, a.version_key)?;
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
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let r: Report = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text))
        .map_err(|e| anyhow::anyhow!("{}: {}: {}", path.display(), e.path(), e.inner()))?;
    Ok(r.weights.into_iter().filter(|w| w.u16 != 0).map(|w| (w.uid, w.u16)).collect())
}

fn parse_weights(s: &str) -> Result<std::collections::BTreeMap<u16, f64>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (u, w) = p.split_once('=').with_context(|| format!("{p:?}: expected UID=WEIGHT"))?;
            Ok((
                u.trim().parse().with_context(|| format!("{u:?} is not a uid"))?,
                w.trim().parse().with_context(|| format!("{w:?} is not a number"))?,
            ))
        })
        .collect()
}

fn local_cmd(cmd: LocalCommand) -> Result<()> {
    match cmd {
        LocalCommand::New { state, netuid, tempo, neuron, weights_rate_limit, commit_reveal, yuma3 } => {
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
            LocalChain::create(&state, st)?;
            println!(
                "created {} with subnet {netuid} ({} uids, tempo {tempo})",
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

pub fn commit(a: CommitArgs) -> Result<ExitCode> {
    let (namespace, name) =
        a.repo.split_once('/').with_context(|| format!("--repo {:?}: expected namespace/name", a.repo))?;
    let pair = a.wallet.wallet().hotkey()?;
    let hotkey = pair.ss58();
    let mut c = ModelCommitment {
        namespace: namespace.into(),
        name: name.into(),
        commit: a.revision.clone(),
        hash: None,
        secure_hash: None,
        chat_template: a.chat_template.clone(),
        hotkey: None,
        competition_id: a.competition_id.clone(),
    };
    match a.format {
        Format::Taoverse | Format::TaoverseLegacy => {
            let dir = a.model_dir.as_deref().context("--model-dir is needed for the taoverse hash")?;
            let hash = arena_runtime::inputs::directory_hash(dir)?;
            if a.format == Format::Taoverse {
                c.secure_hash = Some(commitment::secure_hash(&hash, &hotkey));
            } else {
                c.hash = Some(hash);
            }
        }
        Format::Dippy => {
            let template = a.chat_template.as_deref().context("--chat-template is needed for SN11")?;
            c.hash = Some(commitment::dippy_hash(namespace, name, template, &hotkey));
            c.hotkey = Some(hotkey.clone());
        }
    }
    let s = commitment::produce(a.format, &c)?;
    let call = Call::SetCommitment { netuid: a.netuid, data: s.clone().into_bytes() };
    println!("commitment {s}");
    println!("call data 0x{}", hex::encode(call.encode()?));
    if a.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    let mut chain = a.chain.open()?;
    let r = chain.submit(&pair, &call)?;
    println!("committed by {hotkey} in block {} ({})", r.block, r.id);
    Ok(ExitCode::SUCCESS)
}

pub fn wallet(cmd: WalletCommand) -> Result<ExitCode> {
    match cmd {
        WalletCommand::NewHotkey { wallet, seed, json } => {
            let seed: [u8; 32] = match seed {
                Some(h) => hex::decode(h.trim_start_matches("0x"))
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .context("--seed must be 32 bytes of hex")?,
                None => {
                    let mut s = [0u8; 32];
                    getrandom::getrandom(&mut s)
                        .map_err(|e| anyhow::anyhow!("no randomness for the seed: {e}"))?;
                    s
                }
            };
            let pair = Keypair::from_seed(&seed)?;
            let w = wallet.wallet();
            w.create_hotkey(&pair, Some(&seed), None)?;
            if json {
                print_json(&json!({"path": w.hotkey_path(), "hotkey": pair.ss58()}))?;
            } else {
                println!("{} {}", w.hotkey_path().display(), pair.ss58());
            }
        }
        WalletCommand::Show { wallet, json: true } => {
            let w = wallet.wallet();
            let coldkey = w.coldkey_ss58();
            print_json(&json!({
                "hotkey": w.hotkey()?.ss58(),
                "coldkey": coldkey.as_ref().ok(),
                "coldkey_error": coldkey.as_ref().err().map(|e| format!("{e:#}")),
            }))?;
        }
        WalletCommand::Show { wallet, json: false } => {
            let w = wallet.wallet();
            println!("hotkey  {}", w.hotkey()?.ss58());
            match w.coldkey_ss58() {
                Ok(c) => println!("coldkey {c}"),
                Err(e) => println!("coldkey unreadable: {e:#}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
