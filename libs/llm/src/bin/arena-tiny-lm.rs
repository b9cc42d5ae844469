//! `arena-tiny-lm`: writes the project's tiny language models and their data, deterministically.
//!
//! ```text
//! arena-tiny-lm --out target/arena-demo/llm [--seed 0]
//! ```
//! Produces `data/train.jsonl` (generated documents and chat-formatted questions),
//! `data/eval.jsonl` (held-out documents), `data/multiple_choice.jsonl`,
//! `data/reference.jsonl`, and `models/<name>/` in Hugging Face layout: a llama model untrained,
//! trained 40 and 300 steps, and a qwen2 model trained 120 steps, all sharing one tokenizer.

use std::path::PathBuf;
use std::time::Instant;

use arena_llm::config::Family;
use arena_llm::generate::SplitMix64;
use arena_llm::tiny::{self, TinySpec};
use clap::Parser;
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "arena-tiny-lm",
    about = "Write the project's tiny language models and their data, deterministically"
)]
struct Args {
    /// Output directory.
    #[arg(long, default_value = "target/arena-demo/llm")]
    out: PathBuf,
    /// Seed of the corpus, the tokenizer's training data and every model's initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// (name, family, training steps)
const MODELS: [(&str, Family, usize); 4] = [
    ("llama-untrained", Family::Llama, 0),
    ("llama-40", Family::Llama, 40),
    ("llama-300", Family::Llama, 300),
    ("qwen2-120", Family::Qwen2, 120),
];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let data = args.out.join("data");
    std::fs::create_dir_all(&data)?;
    let train = tiny::training_corpus(args.seed, 2000);
    let eval = tiny::corpus(args.seed.wrapping_add(1), 64);
    tiny::write_jsonl(&data.join("train.jsonl"), train.iter().map(|t| json!({ "text": t })))?;
    tiny::write_jsonl(&data.join("eval.jsonl"), eval.iter().map(|t| json!({ "text": t })))?;
    tiny::write_jsonl(
        &data.join("multiple_choice.jsonl"),
        tiny::multiple_choice(args.seed.wrapping_add(2), 16),
    )?;
    tiny::write_jsonl(&data.join("reference.jsonl"), tiny::reference_pairs(args.seed.wrapping_add(3), 16))?;

    let tokenizer = tiny::train_tokenizer(&train, 512, true)?;
    let qwen_tokenizer = tiny::train_tokenizer(&train, 512, false)?;
    let mut rng = SplitMix64::new(args.seed.wrapping_add(4));
    println!("{:<18} {:>6} {:>16} {:>8}", "model", "steps", "final train loss", "seconds");
    for (name, family, steps) in MODELS {
        let started = Instant::now();
        let tok = if family == Family::Llama { &tokenizer } else { &qwen_tokenizer };
        let made = tiny::make_model(
            &args.out.join("models").join(name),
            &TinySpec::new(family),
            tok,
            &train,
            steps,
            rng.next_u64(),
        )?;
        let loss = made.final_train_loss.map_or("-".to_string(), |l| format!("{l:.4}"));
        println!("{name:<18} {steps:>6} {loss:>16} {:>8.1}", started.elapsed().as_secs_f64());
    }
    println!("wrote {}", args.out.display());
    Ok(())
}
