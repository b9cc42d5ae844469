//! `arena-tiny-roleplay`: writes the roleplay plugin's tiny world, deterministically.
//!
//! ```text
//! arena-tiny-roleplay --out target/arena-demo/roleplay [--seed 0]
//! ```
//! Produces `data/train.jsonl` (the records the models learn), `data/eval.jsonl` (held-out
//! records in Dippy's format), `data/personahub.jsonl` (opening turns for coherence), and
//! `models/<name>/` in Hugging Face layout: a llama model untrained, trained 30 and 300 steps,
//! and a qwen2 model trained 120 steps; and `models/rp-judge/`, a tiny judge and user simulator
//! trained on the reference's coherence and simulator prompts (`--judge-steps 0`: none).

use std::path::PathBuf;
use std::time::Instant;

use arena_roleplay::tiny;
use clap::Parser;

#[derive(Parser)]
#[command(name = "arena-tiny-roleplay", about = "Write the roleplay plugin's tiny world, deterministically")]
struct Args {
    /// Output directory.
    #[arg(long, default_value = "target/arena-demo/roleplay")]
    out: PathBuf,
    /// Seed of the records, the tokenizers' training data and every model's initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training steps of the tiny judge (`models/rp-judge`); 0 writes no judge.
    #[arg(long, default_value_t = tiny::JUDGE_STEPS)]
    judge_steps: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let data = args.out.join("data");
    std::fs::create_dir_all(&data)?;
    let train = tiny::records(args.seed, 600);
    arena_llm::tiny::write_jsonl(&data.join("train.jsonl"), train.iter().cloned())?;
    arena_llm::tiny::write_jsonl(&data.join("eval.jsonl"), tiny::records(args.seed.wrapping_add(1), 48))?;
    arena_llm::tiny::write_jsonl(
        &data.join("personahub.jsonl"),
        tiny::records(args.seed.wrapping_add(2), 16),
    )?;
    let started = Instant::now();
    let made =
        tiny::make_models(&args.out.join("models"), &train, args.judge_steps, args.seed.wrapping_add(3))?;
    println!("{:<14} {:>6} {:>16}", "model", "steps", "final train loss");
    for m in made {
        let loss = m.final_train_loss.map_or("-".to_string(), |l| format!("{l:.4}"));
        println!("{:<14} {:>6} {:>16}", m.name, m.steps, loss);
    }
    println!("wrote {} in {:.1} s", args.out.display(), started.elapsed().as_secs_f64());
    Ok(())
}
