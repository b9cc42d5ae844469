//! The roleplay plugin's tiny world, deterministically from a seed: character cards and
//! conversations in Dippy's record format, where every reply follows from the card (so a model
//! that learns the cards assigns the reference replies more probability), and tiny chat models
//! trained on them to different degrees.

use std::path::Path;

use arena_llm::LlmError;
use arena_llm::config::Family;
use arena_llm::generate::SplitMix64;
use arena_llm::tiny::{self, MadeModel, TinySpec};
use serde_json::{Value, json};

use crate::data::Turn;
use crate::templates::Template;

const NAMES: [&str; 8] = ["Ada", "Bram", "Cora", "Dax", "Elin", "Fitz", "Greta", "Hugo"];
const JOBS: [&str; 8] = ["baker", "sailor", "knight", "wizard", "farmer", "painter", "guard", "merchant"];
const PLACES: [&str; 8] = [
    "the harbor",
    "the old mill",
    "the castle",
    "the forest",
    "the market",
    "the tower",
    "the valley",
    "the bridge",
];
const LIKES: [&str; 8] = ["bread", "the sea", "dragons", "old maps", "rain", "music", "apples", "the stars"];
const MOODS: [&str; 6] = ["cheerful", "grumpy", "calm", "curious", "proud", "shy"];

fn pick<'a>(rng: &mut SplitMix64, xs: &[&'a str]) -> &'a str {
    xs[(rng.next_u64() % xs.len() as u64) as usize]
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

/// One record: a card and 2 or 3 exchanges whose replies restate the card's facts.
pub fn record(rng: &mut SplitMix64) -> Value {
    let (name, job, place, like, mood) =
        (pick(rng, &NAMES), pick(rng, &JOBS), pick(rng, &PLACES), pick(rng, &LIKES), pick(rng, &MOODS));
    let card = format!(
        "{name} is a {mood} {job} who lives in {place} and loves {like}. {name} answers in one short sentence."
    );
    let exchanges = [
        ("Hello! Who are you?".to_string(), format!("I am {name}, a {mood} {job} from {place}.")),
        ("What do you love?".to_string(), format!("I love {like} more than anything.")),
        ("Where do you live?".to_string(), format!("I live in {place}, friend.")),
        ("What is your work?".to_string(), format!("I work as a {job} every day.")),
        (format!("Tell me about {like}."), format!("{} makes me {mood}.", capital(like))),
    ];
    let n = 2 + (rng.next_u64() % 2) as usize;
    let mut order: Vec<usize> = (1..exchanges.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let mut messages = Vec::new();
    for &i in std::iter::once(&0).chain(order.iter()).take(n) {
        messages.push(json!({"role": "user", "content": exchanges[i].0}));
        messages.push(json!({"role": "assistant", "content": exchanges[i].1}));
    }
    json!({"system_prompt": card, "messages": messages})
}

pub fn records(seed: u64, count: usize) -> Vec<Value> {
    let mut rng = SplitMix64::new(seed);
    (0..count).map(|_| record(&mut rng)).collect()
}

/// A record's turns, system first.
pub fn turns(r: &Value) -> Vec<Turn> {
    let mut out = vec![Turn::new("system", r["system_prompt"].as_str().unwrap_or_default())];
    for m in r["messages"].as_array().into_iter().flatten() {
        out.push(Turn::new(
            m["role"].as_str().unwrap_or_default(),
            m["content"].as_str().unwrap_or_default(),
        ));
    }
    out
}

/// The chat models' EOS: the token that ends a ChatML turn, as in Qwen's chat models, so a
/// reply ends where the template would end the turn.
pub const TURN_END: &str = "<|im_end|>";

/// Training text: each record rendered with Dippy's chatml template up to each assistant turn,
/// then that reply and EOS (the eval's target is the reply plus EOS).
pub fn training_text(records: &[Value]) -> Result<Vec<String>, String> {
    let chatml = Template::named("chatml")?;
    let mut docs = Vec::new();
    for r in records {
        let all = turns(r);
        for end in (2..all.len()).step_by(2) {
            let ctx = chatml.context(&all[..end], Some(tiny::BOS), Some(TURN_END))?;
            docs.push(format!("{ctx}{}{TURN_END}", all[end].content));
        }
    }
    Ok(docs)
}

/// Makes [`TURN_END`] the EOS of a model directory written by `make_model` (tokenizer_config's
/// `eos_token`, config.json's `eos_token_id`).
fn end_turns_with_eos(dir: &Path) -> Result<(), LlmError> {
    let io = |e: std::io::Error| LlmError::Input(format!("{}: {e}", dir.display()));
    let tok = arena_llm::load_tokenizer(&dir.join("tokenizer.json"))?;
    let id = tok.token_to_id(TURN_END).ok_or_else(|| LlmError::Tokenizer(format!("no {TURN_END} token")))?;
    for (file, key, value) in
        [("tokenizer_config.json", "eos_token", json!(TURN_END)), ("config.json", "eos_token_id", json!(id))]
    {
        let path = dir.join(file);
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).map_err(io)?)
            .map_err(|e| LlmError::Config(format!("{}: {e}", path.display())))?;
        v[key] = value;
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap_or_default() + "\n").map_err(io)?;
    }
    Ok(())
}

/// (name, family, training steps): more steps, more probability on the reference replies.
pub const MODELS: [(&str, Family, usize); 4] = [
    ("rp-untrained", Family::Llama, 0),
    ("rp-llama-30", Family::Llama, 30),
    ("rp-llama-300", Family::Llama, 300),
    ("rp-qwen2-120", Family::Qwen2, 120),
];

/// Training steps of the tiny judge.
pub const JUDGE_STEPS: usize = 200;

/// Writes `models/<name>/` for each of [`MODELS`] under `out`, sharing one tokenizer per family,
/// and the tiny judge as `models/rp-judge/`.
/// `judge_steps` 0 leaves the judge out.
pub fn make_models(
    out: &Path,
    records: &[Value],
    judge_steps: usize,
    seed: u64,
) -> Result<Vec<MadeModel>, LlmError> {
    let docs = training_text(records).map_err(LlmError::Input)?;
    let llama_tok = tiny::train_tokenizer(&docs, 512, true)?;
    let qwen_tok = tiny::train_tokenizer(&docs, 512, false)?;
    let mut rng = SplitMix64::new(seed);
    let mut made = Vec::new();
    for (name, family, steps) in MODELS {
        let tok = if family == Family::Llama { &llama_tok } else { &qwen_tok };
        made.push(tiny::make_model(
            &out.join(name),
            &TinySpec::new(family),
            tok,
            &docs,
            steps,
            rng.next_u64(),
        )?);
        end_turns_with_eos(&out.join(name))?;
    }
    let judge_seed = rng.next_u64();
    if judge_steps > 0 {
        made.push(make_judge(
            &out.join("rp-judge"),
            &records[..records.len().min(240)],
            judge_steps,
            judge_seed,
        )?);
    }
    Ok(made)
}

/// The tiny local judge's training conversations: PersonaHub-style openings of `records`,
/// continued with fluent replies (the card's own, or another card's) or with what broken models
/// write (stray characters, one word or line over and over), and the simulator's "Tell me
/// more.", each as the coherence judge sees it, answered 1 or 0; and the user simulator's
/// prompts, answered with "Tell me more."
pub fn judge_training_text(records: &[Value], seed: u64) -> Result<Vec<String>, String> {
    let chat = arena_llm::chat::ChatTemplate::new(tiny::CHAT_TEMPLATE, String::new(), TURN_END.into())
        .map_err(|e| e.to_string())?;
    let render = |prompt: String, answer: &str| -> Result<String, String> {
        let text = chat.render(&[arena_llm::chat::Message::user(prompt)], true).map_err(|e| e.to_string())?;
        Ok(format!("{text}{answer}{TURN_END}"))
    };
    let replies = |r: &Value| -> Vec<String> {
        turns(r).into_iter().filter(|t| t.role == "assistant").map(|t| t.content).collect()
    };
    let mut rng = SplitMix64::new(seed);
    let mut docs = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let all = turns(r);
        let mut conv =
            vec![Turn::new("system", crate::data::persona_system(&all[0].content)), all[1].clone()];
        // Seven in ten coherent: the judge leans to "coherent" unless a reply is plainly broken.
        let coherent = rng.next_u64() % 10 < 7;
        let own = replies(r);
        let other =
            replies(&records[(i + 1 + (rng.next_u64() as usize % records.len().max(2))) % records.len()]);
        let turns_here = 2 + (rng.next_u64() % 2) as usize;
        for k in 0..turns_here {
            let text = if coherent {
                let pool = if rng.next_u64().is_multiple_of(2) { &own } else { &other };
                pool[k % pool.len()].clone()
            } else {
                broken(&mut rng, &own[k % own.len()])
            };
            conv.push(Turn::new("assistant", text));
            let ask = crate::data::fill(
                crate::coherence::SIMULATOR_PROMPT,
                &[("messages", &crate::data::py_repr_messages(&conv))],
            );
            docs.push(render(ask, "Tell me more.")?);
            conv.push(Turn::new("user", "Tell me more."));
        }
        let judge = crate::data::fill(
            crate::coherence::JUDGE_PROMPT,
            &[("generated_text", &crate::data::stringify(&conv))],
        );
        docs.push(render(judge, if coherent { "1" } else { "0" })?);
    }
    Ok(docs)
}

/// What an undertrained model writes instead of `reply`: stray characters, a word or a line
/// over and over, or the reply's words shuffled into a heap.
fn broken(rng: &mut SplitMix64, reply: &str) -> String {
    const JUNK: &[u8] = b"abcdefghijklmnopqrstuvwxyz.,;:!?<>|{}[]0123456789 \n";
    match rng.next_u64() % 4 {
        0 => (0..40).map(|_| JUNK[(rng.next_u64() % JUNK.len() as u64) as usize] as char).collect(),
        1 => "assistant\n".repeat(6),
        2 => {
            let w: Vec<&str> = reply.split_whitespace().collect();
            format!("{} ", w[(rng.next_u64() as usize) % w.len().max(1)]).repeat(8)
        }
        _ => {
            let mut w: Vec<&str> = reply.split_whitespace().collect();
            for i in (1..w.len()).rev() {
                w.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
            }
            w.join(" ").repeat(2)
        }
    }
}

/// The tiny local judge (and user simulator): a llama-layout model with a 1024-token window,
/// trained on [`judge_training_text`] in windows of 768 tokens, with the ChatML template.
pub fn make_judge(dir: &Path, records: &[Value], steps: usize, seed: u64) -> Result<MadeModel, LlmError> {
    let docs = judge_training_text(records, seed).map_err(LlmError::Input)?;
    let tok = tiny::train_tokenizer(&docs, 512, true)?;
    let spec = TinySpec { max_position_embeddings: 1024, ..TinySpec::new(Family::Llama) };
    let made = tiny::make_model_with(dir, &spec, &tok, &docs, steps, 768, 4, seed)?;
    end_turns_with_eos(dir)?;
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_dippy_records_and_deterministic() {
        let a = records(7, 20);
        assert_eq!(a, records(7, 20));
        for r in &a {
            let rec = crate::data::record(r).unwrap();
            assert!(rec.messages.len() >= 4 && rec.messages.len().is_multiple_of(2));
            assert_eq!(rec.messages.last().unwrap().role, "assistant");
        }
        let docs = training_text(&a).unwrap();
        assert!(
            docs[0].starts_with("<s><|im_start|>system\n") && docs[0].ends_with("<|im_end|>"),
            "{}",
            docs[0]
        );
    }
}
