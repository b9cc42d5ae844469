//! What several commands share (cargo's `command_prelude`): flag groups and file loading.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use arena_chain::Chain;
use arena_chain::local::LocalChain;
use arena_chain::subtensor::Subtensor;
use arena_chain::wallet::Wallet;
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

#[derive(Args)]
pub struct PluginDirs {
    /// A directory to search for plugins (repeatable). Also searched: $ARENA_PLUGIN_PATH, then
    /// the arena executable's directory and its plugins/ subdirectory.
    #[arg(long = "plugin-dir", value_name = "DIR")]
    pub plugin_dirs: Vec<PathBuf>,
}

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
    pub async fn open(&self) -> Result<Box<dyn Chain>> {
        match (&self.network, &self.chain) {
            (Some(n), _) => Ok(Box::new(Subtensor::connect(n).await?)),
            (None, Some(path)) => Ok(Box::new(LocalChain::open(path)?)),
            (None, None) => bail!("pass --network or --chain"),
        }
    }

    pub fn local(&self) -> Result<LocalChain> {
        match &self.chain {
            Some(path) => LocalChain::open(path),
            None => bail!("this command runs on the embedded chain only (--chain STATE.json)"),
        }
    }
}

#[derive(Args)]
pub struct WalletArgs {
    /// Wallet name (a directory under --wallet-path) [default: default].
    #[arg(long, value_name = "NAME")]
    pub wallet: Option<String>,
    /// Hotkey name (a file under WALLET/hotkeys) [default: default].
    #[arg(long, value_name = "NAME")]
    pub hotkey: Option<String>,
    /// Wallets directory [default: $BT_WALLET_PATH or ~/.bittensor/wallets].
    #[arg(long, value_name = "DIR")]
    pub wallet_path: Option<PathBuf>,
}

impl WalletArgs {
    pub fn wallet(&self) -> Wallet {
        Wallet::new(
            self.wallet_path.clone(),
            self.wallet.as_deref().unwrap_or("default"),
            self.hotkey.as_deref().unwrap_or("default"),
        )
    }

    /// The wallet these flags name, each flag not given taken from a validator configuration.
    pub fn or_config(&self, c: &arena_core::config::Wallet) -> Wallet {
        Wallet::new(
            self.wallet_path.clone().or_else(|| c.path.clone()),
            self.wallet.as_deref().unwrap_or(&c.name),
            self.hotkey.as_deref().unwrap_or(&c.hotkey),
        )
    }
}

/// A validator configuration, checked as `arena check` checks it.
pub fn load_validator(path: &Path) -> Result<arena_core::config::ValidatorConfig> {
    arena_runtime::checker::load_validator(path).map_err(|outcome| {
        eprint!("{}", crate::output::diagnostics(&outcome.diagnostics, &outcome.sources, false));
        anyhow::anyhow!("the validator configuration {} has errors (see `arena check`)", path.display())
    })
}

pub fn table(header: Vec<&str>) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header);
    t
}

pub fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// One competition file, its errors rendered as `arena check` does.
pub fn load_competition(path: &Path) -> anyhow::Result<arena_core::config::Competition> {
    match arena_runtime::checker::load_competitions(&[path.to_path_buf()]) {
        Ok(mut c) => Ok(c.remove(0)),
        Err(outcome) => {
            eprint!("{}", crate::output::diagnostics(&outcome.diagnostics, &outcome.sources, false));
            anyhow::bail!("the competition file has errors (see `arena check`)");
        }
    }
}

/// A competition file's model constraints (its errors rendered as `arena check` does).
pub fn competition_constraints(path: &Path) -> anyhow::Result<arena_core::config::Constraints> {
    Ok(load_competition(path)?.constraints)
}
