//! SN37's IF-eval rules: the 14 rule ids, each rule's prompt line and its check.
//!
//! A keyword rule carries one keyword per prompt of the sample (index 0 and 1); every other
//! rule reads the same for both.

use serde::Serialize;

use super::punkt;
use super::text::{get_words, py_islower, py_isupper, py_split, py_splitlines};

/// The reference's `RuleId` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[repr(u8)]
pub enum RuleId {
    WordCountAtMost = 1,
    WordCountAtLeast = 2,
    SentenceCountAtMost = 3,
    SentenceCountAtLeast = 4,
    AllUpperCase = 5,
    AllLowerCase = 6,
    NoCommas = 7,
    KeywordInclusion = 8,
    KeywordFrequency = 9,
    KeywordForbidden = 10,
    BulletCountFrequency = 11,
    StartsWith = 12,
    EndsWith = 13,
    Quotation = 14,
}

/// Version 1's rules.
pub const V1_RULES: [RuleId; 7] = [
    RuleId::WordCountAtMost,
    RuleId::WordCountAtLeast,
    RuleId::SentenceCountAtMost,
    RuleId::SentenceCountAtLeast,
    RuleId::AllUpperCase,
    RuleId::AllLowerCase,
    RuleId::NoCommas,
];

/// The rules version 2 adds (STARTS_WITH is an id with no rule behind it, in no version).
pub const V2_RULES: [RuleId; 6] = [
    RuleId::BulletCountFrequency,
    RuleId::EndsWith,
    RuleId::KeywordInclusion,
    RuleId::KeywordFrequency,
    RuleId::KeywordForbidden,
    RuleId::Quotation,
];

/// The phrases an ENDS_WITH rule picks from.
pub const ENDS_WITH_PHRASES: [&str; 3] = [
    "Let me know if you have additional questions.",
    "Is there anything else I can help with?",
    "Hope that helps.",
];

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    WordCountAtMost { count: usize },
    WordCountAtLeast { count: usize },
    SentenceCountAtMost { count: usize },
    SentenceCountAtLeast { count: usize },
    AllUpperCase,
    AllLowerCase,
    NoCommas,
    KeywordInclusion { keywords: [String; 2] },
    KeywordFrequency { keywords: [(String, usize); 2] },
    KeywordForbidden { keywords: [String; 2] },
    BulletCountFrequency { count: usize },
    EndsWith { phrase: String },
    Quotation,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Rule {
    pub fn id(&self) -> RuleId {
        match self {
            Rule::WordCountAtMost { .. } => RuleId::WordCountAtMost,
            Rule::WordCountAtLeast { .. } => RuleId::WordCountAtLeast,
            Rule::SentenceCountAtMost { .. } => RuleId::SentenceCountAtMost,
            Rule::SentenceCountAtLeast { .. } => RuleId::SentenceCountAtLeast,
            Rule::AllUpperCase => RuleId::AllUpperCase,
            Rule::AllLowerCase => RuleId::AllLowerCase,
            Rule::NoCommas => RuleId::NoCommas,
            Rule::KeywordInclusion { .. } => RuleId::KeywordInclusion,
            Rule::KeywordFrequency { .. } => RuleId::KeywordFrequency,
            Rule::KeywordForbidden { .. } => RuleId::KeywordForbidden,
            Rule::BulletCountFrequency { .. } => RuleId::BulletCountFrequency,
            Rule::EndsWith { .. } => RuleId::EndsWith,
            Rule::Quotation => RuleId::Quotation,
        }
    }

    /// The keywords a keyword rule uses (later keyword rules may not reuse them).
    pub fn keywords(&self) -> Vec<&str> {
        match self {
            Rule::KeywordInclusion { keywords } | Rule::KeywordForbidden { keywords } => {
                keywords.iter().map(String::as_str).collect()
            }
            Rule::KeywordFrequency { keywords } => keywords.iter().map(|(w, _)| w.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// The rule's line in the prompt for the sample's `index`th question.
    pub fn prompt(&self, index: usize) -> String {
        match self {
            Rule::WordCountAtMost { count } => {
                format!("The response must be no more than {}.", plural(*count, "word", "words"))
            }
            Rule::WordCountAtLeast { count } => {
                format!("The response must be at least {}.", plural(*count, "word", "words"))
            }
            Rule::SentenceCountAtMost { count } => {
                format!("The response must be no more than {}.", plural(*count, "sentence", "sentences"))
            }
            Rule::SentenceCountAtLeast { count } => {
                format!("The response must be at least {}.", plural(*count, "sentence", "sentences"))
            }
            Rule::AllUpperCase => "All letters in the response must be uppercase.".into(),
            Rule::AllLowerCase => "All letters in the response must be lowercase.".into(),
            Rule::NoCommas => "Do not use any commas in your response.".into(),
            Rule::KeywordInclusion { keywords } => {
                format!("The word \"{}\" must be included in the response.", keywords[index])
            }
            Rule::KeywordFrequency { keywords } => {
                let (w, n) = &keywords[index];
                format!("Include the word \"{w}\" {}.", plural(*n, "time", "times"))
            }
            Rule::KeywordForbidden { keywords } => {
                format!("The word \"{}\" must not be included in the response.", keywords[index])
            }
            Rule::BulletCountFrequency { count } => format!(
                "The response must contain exactly {} in markdown format.",
                plural(*count, "'*' bullet point", "'*' bullet points")
            ),
            Rule::EndsWith { phrase } => format!("End your response with the exact phrase \"{phrase}\""),
            Rule::Quotation => "Wrap your entire response in double quotation marks.".into(),
        }
    }

    /// Whether `text`, the response to the `index`th question, follows the rule.
    pub fn matches(&self, text: &str, index: usize) -> bool {
        let lower_words = || get_words(text).into_iter().map(|w| w.to_lowercase()).collect::<Vec<_>>();
        match self {
            Rule::WordCountAtMost { count } => py_split(text).len() <= *count,
            Rule::WordCountAtLeast { count } => py_split(text).len() >= *count,
            Rule::SentenceCountAtMost { count } => punkt::sentence_count(text) <= *count,
            Rule::SentenceCountAtLeast { count } => punkt::sentence_count(text) >= *count,
            Rule::AllUpperCase => py_isupper(text),
            Rule::AllLowerCase => py_islower(text),
            Rule::NoCommas => !text.contains(','),
            Rule::KeywordInclusion { keywords } => lower_words().contains(&keywords[index].to_lowercase()),
            Rule::KeywordFrequency { keywords } => {
                let (w, n) = &keywords[index];
                let w = w.to_lowercase();
                lower_words().iter().filter(|x| **x == w).count() == *n
            }
            Rule::KeywordForbidden { keywords } => !lower_words().contains(&keywords[index].to_lowercase()),
            Rule::BulletCountFrequency { count } => {
                py_splitlines(text)
                    .iter()
                    .filter(|l| l.trim_start_matches(super::text::is_py_space).starts_with('*'))
                    .count()
                    == *count
            }
            Rule::EndsWith { phrase } => text.to_lowercase().ends_with(&phrase.to_lowercase()),
            Rule::Quotation => text.starts_with('"') && text.ends_with('"'),
        }
    }
}

/// Whether a rule with id `id` may join `current` (the reference's `is_rule_incompatible`,
/// negated).
pub fn compatible(id: RuleId, current: &[Rule]) -> bool {
    use RuleId::*;
    let clashes: &[RuleId] = match id {
        WordCountAtMost => {
            &[WordCountAtLeast, SentenceCountAtMost, SentenceCountAtLeast, BulletCountFrequency, EndsWith]
        }
        WordCountAtLeast => &[WordCountAtMost, SentenceCountAtMost],
        SentenceCountAtMost => {
            &[WordCountAtLeast, WordCountAtMost, SentenceCountAtLeast, BulletCountFrequency, EndsWith]
        }
        SentenceCountAtLeast => &[WordCountAtMost, SentenceCountAtMost],
        AllUpperCase => &[AllLowerCase],
        AllLowerCase => &[AllUpperCase],
        NoCommas | KeywordInclusion | KeywordFrequency | KeywordForbidden | StartsWith => &[],
        BulletCountFrequency => &[WordCountAtMost, SentenceCountAtMost],
        EndsWith => &[WordCountAtMost, SentenceCountAtMost, Quotation],
        Quotation => &[EndsWith],
    };
    !current.iter().any(|r| clashes.contains(&r.id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_read_as_the_reference_writes_them() {
        assert_eq!(Rule::WordCountAtMost { count: 1 }.prompt(0), "The response must be no more than 1 word.");
        assert_eq!(
            Rule::BulletCountFrequency { count: 2 }.prompt(1),
            "The response must contain exactly 2 '*' bullet points in markdown format."
        );
        let f = Rule::KeywordFrequency { keywords: [("cat".into(), 1), ("dog".into(), 3)] };
        assert_eq!(f.prompt(0), "Include the word \"cat\" 1 time.");
        assert_eq!(f.prompt(1), "Include the word \"dog\" 3 times.");
        assert!(f.matches("A dog, a DOG; the dog!", 1));
        assert!(!f.matches("cat cat", 0));
        assert!(Rule::Quotation.matches("\"", 0));
        assert!(Rule::BulletCountFrequency { count: 2 }.matches("intro\n  * a\n*b\n- c", 0));
        assert!(Rule::EndsWith { phrase: ENDS_WITH_PHRASES[2].into() }.matches("Sure. hope THAT helps.", 0));
        assert!(!compatible(RuleId::Quotation, &[Rule::EndsWith { phrase: "x".into() }]));
        assert!(compatible(RuleId::NoCommas, &[Rule::Quotation]));
    }
}
