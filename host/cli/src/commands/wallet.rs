//! `arena wallet`: btcli wallets.

use std::process::ExitCode;

use anyhow::{Context, Result};
use arena_chain::wallet::Keypair;
use clap::Subcommand;
use serde_json::json;

use crate::args::{WalletArgs, print_json};

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

pub fn exec(cmd: WalletCommand) -> Result<ExitCode> {
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
