//! Dippy's conversation records and the three ways its scoring turns them into samples, as pure
//! functions over the records and a seeded [`PyRandom`].
//!
//! A record is `{"system_prompt": str, "messages": [{"role": "user"|"assistant", "content": str}, …]}`
//! (the dataset API's `all_convos`, `DippyAI/dippy_synthetic_dataset_v1`); PersonaHub's
//! augmented records (`DippyAI/personahub_augmented_v0`) have the same shape, under `data` when
//! read from the hub's parquet.

use arena_plugin_api::pyrandom::PyRandom;
use serde_json::Value;

/// The strings Dippy removes from every message's content (`scoring/common.py`), in its order.
pub const SPECIAL_TOKENS: [&str; 35] = [
    "<unk>",
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    "[TOOL_CALLS]",
    "[IMG]",
    "<pad>",
    "[IMG_BREAK]",
    "[IMG_END]",
    "[PREFIX]",
    "[MIDDLE]",
    "[SUFFIX]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
    "[TOOL_CONTENT]",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<start_of_turn>",
    "<end_of_turn>",
];

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Turn {
    pub role: String,
    pub content: String,
}

impl Turn {
    pub fn new(role: &str, content: impl Into<String>) -> Turn {
        Turn { role: role.into(), content: content.into() }
    }
}

/// One record as read: the character card and the turns.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub system_prompt: String,
    pub messages: Vec<Turn>,
}

/// A sample Dippy scores: the messages rendered as the context (system first), the reference
/// reply, and the last user turn.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub messages: Vec<Turn>,
    pub character_response: String,
    pub last_user_message: String,
}

/// Reads a record, `data`-wrapped or not. Roles other than user and assistant, missing fields
/// and non-string contents are refused with the field that is wrong.
pub fn record(v: &Value) -> Result<Record, String> {
    let v = match v.get("data") {
        Some(inner) if v.get("messages").is_none() => inner,
        _ => v,
    };
    let system_prompt =
        v.get("system_prompt").and_then(Value::as_str).ok_or("no string field `system_prompt`")?.to_string();
    let list = v.get("messages").and_then(Value::as_array).ok_or("no array field `messages`")?;
    let mut messages = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).ok_or(format!("messages[{i}]: no string `role`"))?;
        if role != "user" && role != "assistant" {
            return Err(format!(
                "messages[{i}]: role `{role}` (Dippy's records have user and assistant turns)"
            ));
        }
        let content =
            m.get("content").and_then(Value::as_str).ok_or(format!("messages[{i}]: no string `content`"))?;
        messages.push(Turn::new(role, content));
    }
    Ok(Record { system_prompt, messages })
}

/// `content` with every special token removed, one token after the other as Dippy does.
pub fn strip_special(content: &str) -> String {
    let mut s = content.to_string();
    for t in SPECIAL_TOKENS {
        if s.contains(t) {
            s = s.replace(t, "");
        }
    }
    s
}

/// Python's `len(str)`: code points.
pub fn py_len(s: &str) -> usize {
    s.chars().count()
}

/// `StreamedSyntheticDataset.process_data` (the eval and vibe samples): special tokens stripped;
/// a record is dropped once the characters of the messages before one exceed `max_input_len`;
/// the last message is the reference reply; a record with no user turn before it is dropped, and
/// so is one that does not end with an assistant turn.
/// Returns the kept samples and how many records were dropped for each reason.
pub fn streamed(records: &[Record], max_input_len: usize) -> (Vec<Sample>, Dropped) {
    let mut out = Vec::new();
    let mut dropped = Dropped::default();
    'records: for r in records {
        let mut messages = vec![Turn::new("system", r.system_prompt.clone())];
        let mut so_far = 0usize;
        for m in &r.messages {
            if so_far > max_input_len {
                dropped.too_long += 1;
                continue 'records;
            }
            let content = strip_special(&m.content);
            so_far += py_len(&content);
            messages.push(Turn::new(&m.role, content));
        }
        // The reference pops the last message whatever its role (a conversation ending on a user
        // turn would score that turn as the character's reply); arena drops such a record.
        let Some(last) = messages.pop().filter(|m| m.role == "assistant" && !r.messages.is_empty()) else {
            dropped.no_reply += 1;
            continue;
        };
        let Some(user) = messages.iter().rev().find(|m| m.role == "user").map(|m| m.content.clone()) else {
            dropped.no_user_turn += 1;
            continue;
        };
        out.push(Sample { messages, character_response: last.content, last_user_message: user });
    }
    (out, dropped)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub too_long: usize,
    pub no_user_turn: usize,
    pub no_reply: usize,
}

/// `StreamedSyntheticPartialDataset.process_data` (the judge's samples): each conversation cut
/// at `randint(max(1, allowed // 2), allowed)` messages (system included, `allowed = min(len,
/// max_messages)`) when `rng.random() < cut_early`, trailing non-user messages popped, and the
/// assistant reply that followed that user turn in the original kept as the reference. One
/// `random()` per record, and one `randint` when it cuts, in record order, as the reference.
pub fn partial(
    records: &[Record],
    max_messages: usize,
    cut_early: f64,
    rng: &mut PyRandom,
) -> (Vec<Sample>, Dropped) {
    let mut out = Vec::new();
    let mut dropped = Dropped::default();
    for r in records {
        let mut all = vec![Turn::new("system", r.system_prompt.clone())];
        all.extend(r.messages.iter().map(|m| Turn::new(&m.role, strip_special(&m.content))));
        let allowed = all.len().min(max_messages);
        let cutoff = if rng.random() < cut_early {
            let lo = (allowed / 2).max(1);
            rng.randint(lo as i64, allowed as i64) as usize
        } else {
            allowed
        };
        let mut cut: Vec<Turn> = all[..cutoff.min(all.len())].to_vec();
        while cut.last().is_some_and(|m| m.role != "user") {
            cut.pop();
        }
        let Some(last_user) = cut.last().map(|m| m.content.clone()) else {
            dropped.no_user_turn += 1;
            continue;
        };
        // The reference searches the original for the last user turn with the same content
        // (not the same position) that has a message after it.
        let idx = all
            .iter()
            .enumerate()
            .rev()
            .find(|(i, m)| m.role == "user" && *i + 1 < all.len() && m.content == last_user)
            .map(|(i, _)| i);
        match idx.map(|i| &all[i + 1]) {
            Some(next) if next.role == "assistant" => out.push(Sample {
                messages: cut,
                character_response: next.content.clone(),
                last_user_message: last_user,
            }),
            _ => dropped.no_reply += 1,
        }
    }
    (out, dropped)
}

/// The system prompt PersonaHub's coherence conversations start with (the reference's f-string,
/// indentation included).
pub fn persona_system(system_prompt: &str) -> String {
    format!(
        "\n            You are an assistant playing the following character:\n            {system_prompt}\n            "
    )
}

/// `PersonaHubDataset.process_data`: the augmented system prompt and the record's first message
/// as the user's opening turn.
pub fn persona(records: &[Record]) -> (Vec<Vec<Turn>>, Dropped) {
    let mut out = Vec::new();
    let mut dropped = Dropped::default();
    for r in records {
        let Some(first) = r.messages.first() else {
            dropped.no_user_turn += 1;
            continue;
        };
        out.push(vec![
            Turn::new("system", persona_system(&r.system_prompt)),
            Turn::new("user", first.content.clone()),
        ]);
    }
    (out, dropped)
}

/// `stringify_convo` (coherence) and `stringify_convo_from_messages(.., truncate=False)` (judge):
/// `System Prompt: …`, then `Role: …` / `Content: …` / a blank line per message.
pub fn stringify(messages: &[Turn]) -> String {
    let mut lines = Vec::new();
    for m in messages {
        if m.role == "system" {
            lines.push(format!("System Prompt: {}", m.content));
            continue;
        }
        lines.push(format!("Role: {}", m.role));
        lines.push(format!("Content: {}", m.content));
        lines.push(String::new());
    }
    lines.join("\n")
}

/// `template` with each `{name}` of `values` replaced in one pass, as a Python f-string fills it
/// (a value that contains another placeholder is not filled again).
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    'outer: while !rest.is_empty() {
        for (k, v) in values {
            let key = format!("{{{k}}}");
            if rest.starts_with(&key) {
                out.push_str(v);
                rest = &rest[key.len()..];
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Python's `repr(str)`.
pub fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() || not_printable(c) => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Characters outside `Cc` that Python's `str.isprintable` also refuses and `repr` escapes:
/// the separators other than the ASCII space (Zs, Zl, Zp) and the common format characters (Cf).
fn not_printable(c: char) -> bool {
    matches!(c as u32, 0xa0 | 0xad | 0x61c | 0x1680 | 0x180e | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064 | 0x2066..=0x206f | 0x3000 | 0xfeff)
}

/// Python's `str(list_of_dicts)` for a conversation, as the reference's user-simulator prompt
/// embeds it: `[{'role': 'system', 'content': '…'}, …]`.
pub fn py_repr_messages(messages: &[Turn]) -> String {
    let items: Vec<String> = messages
        .iter()
        .map(|m| format!("{{'role': {}, 'content': {}}}", py_repr_str(&m.role), py_repr_str(&m.content)))
        .collect();
    format!("[{}]", items.join(", "))
}

/// The order Dippy's `sample_dataset` visits samples in: `random.shuffle` of the indices.
/// Its callers take the first `n` that render and fit, replacing the ones that do not.
pub fn shuffled(len: usize, rng: &mut PyRandom) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..len).collect();
    rng.shuffle(&mut idx);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(sys: &str, turns: &[(&str, &str)]) -> Record {
        Record { system_prompt: sys.into(), messages: turns.iter().map(|(r, c)| Turn::new(r, *c)).collect() }
    }

    #[test]
    fn streamed_drops_by_the_characters_before_a_message() {
        // 5 + 5 = 10 characters before the third message: kept at 10, dropped at 9.
        let r = rec("S", &[("user", "aaaaa"), ("assistant", "bbbbb"), ("assistant", "a very long reply")]);
        assert_eq!(streamed(std::slice::from_ref(&r), 10).0.len(), 1);
        let (kept, d) = streamed(&[r], 9);
        assert!(kept.is_empty());
        assert_eq!(d.too_long, 1);
    }

    #[test]
    fn streamed_strips_special_tokens_and_pops_the_reply() {
        let r = rec("S", &[("user", "<|im_start|>hi[INST]"), ("assistant", "</s>hello")]);
        let (kept, _) = streamed(&[r], 100);
        assert_eq!(kept[0].last_user_message, "hi");
        assert_eq!(kept[0].character_response, "hello");
        assert_eq!(kept[0].messages, vec![Turn::new("system", "S"), Turn::new("user", "hi")]);
    }

    #[test]
    fn a_record_without_a_user_turn_is_dropped() {
        let (kept, d) =
            streamed(&[rec("S", &[("assistant", "x")]), rec("S", &[]), rec("S", &[("user", "u")])], 100);
        assert!(kept.is_empty());
        assert_eq!((d.no_user_turn, d.no_reply), (1, 2));
    }

    #[test]
    fn records_are_read_with_their_faults_named() {
        assert!(record(&json!({"data": {"system_prompt": "s", "messages": []}})).is_ok());
        let e = record(&json!({"system_prompt": "s", "messages": [{"role": "tool", "content": "x"}]}))
            .unwrap_err();
        assert!(e.contains("messages[0]") && e.contains("tool"), "{e}");
        assert!(record(&json!({"messages": []})).unwrap_err().contains("system_prompt"));
    }

    #[test]
    fn partial_cuts_before_a_user_turn_and_finds_its_reply() {
        let r = rec("S", &[("user", "u1"), ("assistant", "a1"), ("user", "u2"), ("assistant", "a2")]);
        let mut rng = PyRandom::new(0);
        let (kept, _) = partial(&[r], 6, 1.0, &mut rng);
        let s = &kept[0];
        assert_eq!(s.messages.last().unwrap().role, "user");
        let expect = if s.last_user_message == "u1" { "a1" } else { "a2" };
        assert_eq!(s.character_response, expect);
    }

    #[test]
    fn fill_is_one_pass() {
        assert_eq!(fill("a {x} b {y}", &[("x", "{y}"), ("y", "2")]), "a {y} b 2");
    }

    #[test]
    fn python_reprs() {
        assert_eq!(py_repr_str("it's"), "\"it's\"");
        assert_eq!(py_repr_str("a\"b'c\n"), "'a\"b\\'c\\n'");
        assert_eq!(py_repr_messages(&[Turn::new("user", "hi")]), "[{'role': 'user', 'content': 'hi'}]");
    }

    #[test]
    fn stringify_matches_the_reference_layout() {
        let s = stringify(&[Turn::new("system", "S"), Turn::new("user", "U")]);
        assert_eq!(s, "System Prompt: S\nRole: user\nContent: U\n");
    }
}
