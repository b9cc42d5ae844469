//! `arena schema`: the JSON Schema of the files users write.

use std::process::ExitCode;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SchemaKind {
    Competition,
    Validator,
    /// The input of `arena yuma`.
    Yuma,
}

pub fn exec(kind: SchemaKind) -> anyhow::Result<ExitCode> {
    let schema = match kind {
        SchemaKind::Competition => schemars::schema_for!(arena_core::config::Competition),
        SchemaKind::Validator => schemars::schema_for!(arena_core::config::ValidatorConfig),
        SchemaKind::Yuma => schemars::schema_for!(arena_yuma::EpochInput),
    };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
