//! Model commitments: the strings miners publish on chain (`Commitments::set_commitment`,
//! one `Raw` field of at most 128 bytes) to claim a model, in each reference subnet's format.
//!
//! - `taoverse` (SN9, SN37): `namespace:name:commit:secure_hash:competition_id`, where
//!   `secure_hash = b64(sha256(hash + hotkey))` binds the model's directory hash to the hotkey
//!   (`taoverse/model/data.py`, `model/utils.py`, `storage/disk/utils.py`).
//! - `taoverse-legacy` (SN9 before competitions): `namespace:name:commit:hash`, the competition
//!   being the subnet's default.
//! - `dippy` (SN11): `namespace:name:chat_template:hotkey:hash:competition_id`, where
//!   `hash = int(sha256(" ".join([namespace, name, chat_template, hotkey])).hexdigest()[:16], 16)`
//!   (`common/data.py`, `utilities/validation_utils.regenerate_hash`).
//!
//! `None` is written as the string `None`, as Python's f-strings do.

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The chain's limit for one `Raw` field, and the subnets' `MAX_METADATA_BYTES`.
pub const MAX_BYTES: usize = 128;

/// Which commitment string a competition's miners publish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// SN9/SN37: `namespace:name:commit:secure_hash:competition_id`.
    #[default]
    Taoverse,
    /// SN9's older 4-token form `namespace:name:commit:hash` (default competition).
    TaoverseLegacy,
    /// SN11: `namespace:name:chat_template:hotkey:hash:competition_id`.
    Dippy,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Taoverse, Format::TaoverseLegacy, Format::Dippy];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Taoverse => "taoverse",
            Format::TaoverseLegacy => "taoverse-legacy",
            Format::Dippy => "dippy",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| {
            format!("unknown commitment format `{s}` (expected taoverse, taoverse-legacy or dippy)")
        })
    }
}

/// A parsed commitment. Fields a format does not carry are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCommitment {
    pub namespace: String,
    pub name: String,
    /// Git revision of the repository (taoverse).
    pub commit: Option<String>,
    /// Directory hash (taoverse-legacy), or the SN11 hash as a decimal string.
    pub hash: Option<String>,
    /// `b64(sha256(hash + hotkey))` (taoverse).
    pub secure_hash: Option<String>,
    /// SN11's chat template.
    pub chat_template: Option<String>,
    /// SN11 writes the miner's hotkey into the string.
    pub hotkey: Option<String>,
    pub competition_id: Option<String>,
}

impl ModelCommitment {
    /// `namespace/name`, the Hugging Face repository.
    pub fn repo(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("None")
}

fn none_if(s: &str) -> Option<String> {
    (s != "None").then(|| s.to_string())
}

/// The string to publish. Errors when it is longer than 128 bytes or a field holds `:`.
pub fn produce(format: Format, c: &ModelCommitment) -> Result<String> {
    let fields: Vec<&str> = match format {
        Format::Taoverse => {
            // taoverse reads the fifth field with int(): "None" would be unreadable.
            let id = c.competition_id.as_deref().context("a taoverse commitment needs a competition id")?;
            id.parse::<u32>().with_context(|| format!("competition id {id:?} is not a number"))?;
            vec![&c.namespace, &c.name, opt(&c.commit), opt(&c.secure_hash), id]
        }
        Format::TaoverseLegacy => {
            // The 4-field form holds no competition id and no secure hash: refuse to drop them.
            ensure!(c.competition_id.is_none(), "the legacy taoverse form has no competition id");
            ensure!(
                c.secure_hash.is_none() || c.secure_hash == c.hash,
                "the legacy taoverse form has no secure hash (only the hash)"
            );
            vec![&c.namespace, &c.name, opt(&c.commit), opt(&c.hash)]
        }
        Format::Dippy => {
            vec![
                &c.namespace,
                &c.name,
                opt(&c.chat_template),
                opt(&c.hotkey),
                opt(&c.hash),
                opt(&c.competition_id),
            ]
        }
    };
    if let Some(f) = fields.iter().find(|f| f.contains(':')) {
        bail!("commitment field {f:?} contains ':', the separator");
    }
    let s = fields.join(":");
    ensure!(
        s.len() <= MAX_BYTES,
        "the commitment is {} bytes; the chain and the subnets allow {MAX_BYTES}: {s}",
        s.len()
    );
    Ok(s)
}

/// Reads a commitment string as the subnet's validators do.
pub fn parse(format: Format, s: &str) -> Result<ModelCommitment> {
    let t: Vec<&str> = s.split(':').collect();
    let mut c = ModelCommitment {
        namespace: String::new(),
        name: String::new(),
        commit: None,
        hash: None,
        secure_hash: None,
        chat_template: None,
        hotkey: None,
        competition_id: None,
    };
    match format {
        Format::Taoverse | Format::TaoverseLegacy => {
            ensure!(
                t.len() == 4 || t.len() == 5,
                "a taoverse commitment has 5 fields (4 in the legacy form); {s:?} has {}",
                t.len()
            );
            c.namespace = t[0].into();
            c.name = t[1].into();
            c.commit = none_if(t[2]);
            c.secure_hash = none_if(t[3]);
            if t.len() == 5 {
                let id = t[4];
                id.parse::<u32>()
                    .with_context(|| format!("competition id {id:?} in {s:?} is not a number"))?;
                c.competition_id = Some(id.into());
            } else {
                // The legacy token 3 is the hash, and taoverse reads it as the secure hash too.
                c.hash = none_if(t[3]);
            }
        }
        Format::Dippy => {
            ensure!(t.len() == 5 || t.len() == 6, "an SN11 commitment has 6 fields; {s:?} has {}", t.len());
            c.namespace = t[0].into();
            c.name = t[1].into();
            c.chat_template = none_if(t[2]);
            c.hotkey = Some(if t[3] == "None" { String::new() } else { t[3].into() });
            c.hash = none_if(t[4]);
            c.competition_id = t.get(5).and_then(|v| none_if(v));
        }
    }
    Ok(c)
}

/// taoverse's `secure_hash`: `b64(sha256((hash + hotkey).encode()))`.
pub fn secure_hash(hash: &str, hotkey: &str) -> String {
    B64.encode(Sha256::digest(format!("{hash}{hotkey}").as_bytes()))
}

/// SN11's hash: the first 16 hex digits of `sha256(" ".join([namespace, name, template,
/// hotkey]))` as an integer, written in decimal.
pub fn dippy_hash(namespace: &str, name: &str, chat_template: &str, hotkey: &str) -> String {
    let d = Sha256::digest([namespace, name, chat_template, hotkey].join(" ").as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes")).to_string()
}

/// Checks a commitment read from the chain against the hotkey that published it (and, for
/// taoverse, the downloaded model's directory hash). `Ok` means the validator may evaluate it.
pub fn verify(format: Format, c: &ModelCommitment, hotkey: &str, directory_hash: Option<&str>) -> Result<()> {
    match format {
        Format::Taoverse => {
            let Some(secure) = &c.secure_hash else { bail!("the commitment has no secure hash") };
            if let Some(h) = directory_hash {
                let want = secure_hash(h, hotkey);
                ensure!(
                    *secure == want,
                    "secure hash {secure} does not match the model: b64(sha256(hash + hotkey)) is {want}"
                );
            }
            Ok(())
        }
        Format::TaoverseLegacy => {
            let Some(hash) = &c.hash else { bail!("the commitment has no hash") };
            if let Some(h) = directory_hash {
                ensure!(hash == h, "hash {hash} does not match the model's directory hash {h}");
            }
            Ok(())
        }
        Format::Dippy => {
            let Some(template) = c.chat_template.as_deref() else {
                bail!("the commitment names no chat template")
            };
            let want = dippy_hash(&c.namespace, &c.name, template, hotkey);
            ensure!(
                c.hash.as_deref() == Some(want.as_str()),
                "hash {} does not match hotkey {hotkey}: expected {want}",
                opt(&c.hash)
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `commitment` fuzz target: a legacy 4-field string read as taoverse has no
    /// competition id, and producing it wrote `:None`, which no validator can read back.
    #[test]
    fn a_taoverse_commitment_without_a_competition_id_is_not_produced() {
        let s = "org:model:0123456789abcdef0123456789abcdef01234567:aGFzaA==";
        let c = parse(Format::Taoverse, s).unwrap();
        assert_eq!(c.competition_id, None);
        let e = produce(Format::Taoverse, &c).unwrap_err().to_string();
        assert!(e.contains("needs a competition id"), "{e}");
        assert_eq!(produce(Format::TaoverseLegacy, &c).unwrap(), s);
        let with_id = ModelCommitment { competition_id: Some("2".into()), hash: None, ..c.clone() };
        assert_eq!(parse(Format::Taoverse, &produce(Format::Taoverse, &with_id).unwrap()).unwrap(), with_id);
        let bad = ModelCommitment { competition_id: Some("two".into()), ..c };
        assert!(produce(Format::Taoverse, &bad).unwrap_err().to_string().contains("not a number"));
    }

    /// Found by the `commitment` fuzz target: a 5-field string read in the legacy format keeps
    /// its competition id and secure hash, which producing the 4-field form silently dropped.
    #[test]
    fn the_legacy_form_refuses_what_it_cannot_hold() {
        let s = "org:model:0123456789abcdef0123456789abcdef01234567:c2VjdXJl:2";
        let c = parse(Format::TaoverseLegacy, s).unwrap();
        let e = produce(Format::TaoverseLegacy, &c).unwrap_err().to_string();
        assert!(e.contains("no competition id"), "{e}");
        let no_id = ModelCommitment { competition_id: None, ..c };
        assert!(produce(Format::TaoverseLegacy, &no_id).unwrap_err().to_string().contains("no secure hash"));
    }
}
