//! `arena yuma`: reading an epoch file (the CLI renders the results).

use anyhow::{Result, anyhow};

use super::EpochInput;

/// Parses an epoch file; errors name the line, column and field path.
pub fn parse(text: &str, name: &str) -> Result<EpochInput> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        anyhow!("{name}:{}:{}: field `{}`: {inner}", inner.line(), inner.column(), e.path())
    })
}
