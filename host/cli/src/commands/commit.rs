//! `arena commit`: a miner publishes its model commitment.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use arena_chain::Call;
use arena_core::commitment::{self, Format, ModelCommitment};
use clap::Args;

use crate::args::{ChainArg, WalletArgs};

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

pub async fn exec(a: CommitArgs) -> Result<ExitCode> {
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
    let mut chain = a.chain.open().await?;
    let r = chain.submit(&pair, &call).await?;
    println!("committed by {hotkey} in block {} ({})", r.block, r.id);
    Ok(ExitCode::SUCCESS)
}
