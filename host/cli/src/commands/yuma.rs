//! `arena yuma`: subtensor's epoch on a subnet state, bit for bit.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

#[derive(Args)]
pub struct YumaArgs {
    /// The epoch's input: {"current_block", "stake": [rao per uid], "last_update",
    /// "block_at_registration", "validator_permit", "weights" (dense rows or [uid, u16] pairs),
    /// optional "bonds", "owner_uid", "tao_stake", "tao_weight", "commit_blocks", "emission",
    /// "hyperparameters" {tempo, kappa, bonds_moving_average, bonds_penalty, liquid_alpha,
    /// alpha_low, alpha_high, alpha_sigmoid_steepness, yuma3, activity_cutoff,
    /// max_allowed_validators, commit_reveal, stake_threshold}, and "then": [changes per later
    /// epoch]}. `arena schema yuma` prints the full schema.
    #[arg(long, value_name = "EPOCH.json")]
    input: PathBuf,
    /// Run this many epochs, one tempo apart; bonds and permits carry over.
    #[arg(long, value_name = "N", default_value_t = 1)]
    epochs: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn exec(args: YumaArgs) -> anyhow::Result<ExitCode> {
    let text = arena_runtime::files::read_json_text(&args.input)?;
    let input = arena_yuma::report::parse(&text, &args.input.display().to_string())?;
    let results = arena_yuma::run(&input, args.epochs)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json!({"epochs": results}))?);
    } else {
        print!("{}", crate::output::epochs(&results, input.emission));
    }
    Ok(ExitCode::SUCCESS)
}
