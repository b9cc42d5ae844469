//! Dippy's ten chat templates (`scoring/prompt_templates/`), rendered with minijinja as Jinja2's
//! defaults render Dippy's files (`jinja2.Template(source)`: no block trimming, the final newline
//! dropped). The files in `templates/` are the project's own: whitespace is written as string
//! literals, and each renders byte for byte what Dippy's template of that name renders
//! (`tests/fixtures/roleplay/expected.json` holds Dippy's renderings, made from its files).
//! Dippy renders these, never the model's own chat template.

use minijinja::{Environment, Error, ErrorKind, context};

use crate::data::Turn;

/// (name a miner commits, source)
pub const TEMPLATES: [(&str, &str); 10] = [
    ("vicuna", include_str!("../templates/vicuna.jinja")),
    ("chatml", include_str!("../templates/chatml.jinja")),
    ("zephyr", include_str!("../templates/zephyr.jinja")),
    ("mistral", include_str!("../templates/mistral.jinja")),
    ("alpaca", include_str!("../templates/alpaca.jinja")),
    ("llama2", include_str!("../templates/llama2.jinja")),
    ("llama3", include_str!("../templates/llama3.jinja")),
    ("llama3dot1", include_str!("../templates/llama3dot1.jinja")),
    ("gemma2", include_str!("../templates/gemma2.jinja")),
    ("qwen2dot5", include_str!("../templates/qwen2dot5.jinja")),
];

pub fn names() -> Vec<&'static str> {
    TEMPLATES.iter().map(|(n, _)| *n).collect()
}

/// One of Dippy's templates, ready to render.
pub struct Template {
    env: Environment<'static>,
    pub name: String,
}

impl Template {
    /// The template a miner names; an unknown name is an error that lists the known ones.
    pub fn named(name: &str) -> Result<Template, String> {
        let Some((_, src)) = TEMPLATES.iter().find(|(n, _)| *n == name) else {
            return Err(format!("unknown chat template `{name}` (Dippy's are {})", names().join(", ")));
        };
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template("t", src).map_err(|e| format!("chat template `{name}`: {e}"))?;
        Ok(Template { env, name: name.to_string() })
    }

    /// Renders `messages` as Dippy does: `add_generation_prompt` and
    /// `include_beginning_of_conversation` on, with the tokenizer's BOS and EOS strings.
    /// A tokenizer without BOS or EOS gives `None`, as Python's `None`: concatenating it is an
    /// error (the sample is skipped, as the reference's `TypeError` skips it).
    pub fn render(&self, messages: &[Turn], bos: Option<&str>, eos: Option<&str>) -> Result<String, String> {
        let t = self.env.get_template("t").map_err(|e| e.to_string())?;
        let msgs: Vec<minijinja::Value> = messages
            .iter()
            .map(|m| {
                minijinja::Value::from_pairs([("role", m.role.as_str()), ("content", m.content.as_str())])
            })
            .collect();
        t.render(context! {
            messages => msgs,
            bos_token => bos,
            eos_token => eos,
            add_generation_prompt => true,
            include_beginning_of_conversation => true,
        })
        .map_err(|e| format!("chat template `{}`: {e}", self.name))
    }

    /// A context as Dippy's datasets return it: rendered, EOS cut from the end, BOS put in front
    /// when missing.
    pub fn context(&self, messages: &[Turn], bos: Option<&str>, eos: Option<&str>) -> Result<String, String> {
        let mut s = self.render(messages, bos, eos)?;
        if let Some(e) = eos.filter(|e| !e.is_empty())
            && s.ends_with(e)
        {
            s.truncate(s.len() - e.len());
        }
        if let Some(b) = bos
            && !s.starts_with(b)
        {
            s.insert_str(0, b);
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv() -> Vec<Turn> {
        vec![
            Turn::new("system", " Sys prompt. "),
            Turn::new("user", "Hi there"),
            Turn::new("assistant", " Hello! "),
            Turn::new("user", "How are you?"),
        ]
    }

    // Dippy's own files under jinja2 3.1 render these (`jinja2.Template(open(f).read())`).
    #[test]
    fn renders_as_dippys_files_under_jinja2() {
        let cases = [
            (
                "alpaca",
                "Sys prompt.\n### Instruction:\nHi there\n### Response:\nHello!\n### Instruction:\nHow are you?\n### Response:",
            ),
            (
                "chatml",
                "<|im_start|>system\n Sys prompt. <|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n Hello! <|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n",
            ),
            (
                "gemma2",
                "\n    \n    \n\n\n\n\n    \n        \n    \n\n    \n        \n    \n\n    <start_of_turn>user\nSys prompt.\n\nHi there<end_of_turn>\n\n\n\n    \n        \n    \n\n    \n        \n    \n\n    <start_of_turn>model\nHello!<end_of_turn>\n\n\n\n    \n        \n    \n\n    \n        \n    \n\n    <start_of_turn>user\nHow are you?<end_of_turn>\n\n\n\n\n    <start_of_turn>model\n\n",
            ),
            (
                "llama2",
                "[INST] <<SYS>>\n Sys prompt. \n<</SYS>>\n\n\nHi there [/INST]\n  Hello!  </s>\n<s>[INST] How are you? [/INST]\n",
            ),
            (
                "llama3",
                "<s><|start_header_id|>system<|end_header_id|>\n\nSys prompt.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            ),
            (
                "llama3dot1",
                "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\nSys prompt.<|eot_id|>\n<|start_header_id|>user<|end_header_id|>\nHi there<|eot_id|>\n<|start_header_id|>assistant<|end_header_id|>\n Hello! <|eot_id|>\n<|start_header_id|>user<|end_header_id|>\nHow are you?<|eot_id|>\n<|start_header_id|>assistant<|end_header_id|>\n",
            ),
            (
                "mistral",
                "<s>[SYSTEM_PROMPT] Sys prompt. [/SYSTEM_PROMPT][INST]Hi there[/INST] Hello! </s>[INST]How are you?[/INST]",
            ),
            (
                "qwen2dot5",
                "<|im_start|>system\n Sys prompt. <|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n Hello! <|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n",
            ),
            (
                "vicuna",
                "<s>Sys prompt.\nBEGINNING OF CONVERSATION:\n{{user}}: Hi there\n{{char}}: Hello!\n{{user}}: How are you?\n{{char}}: ",
            ),
            (
                "zephyr",
                "\n<|system|>\n Sys prompt. </s>\n<|user|>\nHi there</s>\n<|assistant|>\n Hello! </s>\n<|user|>\nHow are you?</s>\n<|assistant|>",
            ),
        ];
        for (name, want) in cases {
            let got = Template::named(name).unwrap().render(&conv(), Some("<s>"), Some("</s>")).unwrap();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let e = Template::named("llama4").err().unwrap();
        assert!(e.contains("llama4") && e.contains("qwen2dot5"), "{e}");
    }

    #[test]
    fn the_context_loses_its_eos_and_gains_a_bos() {
        let t = Template::named("mistral").unwrap();
        let msgs = [Turn::new("user", "u"), Turn::new("assistant", "a")];
        assert_eq!(t.context(&msgs, Some("<s>"), Some("</s>")).unwrap(), "<s>[INST]u[/INST]a");
        let t = Template::named("chatml").unwrap();
        assert!(t.context(&msgs, Some("<s>"), None).unwrap().starts_with("<s><|im_start|>"));
    }

    #[test]
    fn mistral_refuses_other_roles() {
        let t = Template::named("mistral").unwrap();
        let e = t.render(&[Turn::new("tool", "x")], None, None).unwrap_err();
        assert!(e.contains("Only user, system and assistant"), "{e}");
    }
}
