//! JSON inputs with every object's keys unique. serde_json keeps the last of repeated keys
//! without a word; a RAW.json that names a task twice, or a state file with a uid twice, must be
//! refused instead, with the place named.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Checks that no object in `text` repeats a key. The error names the JSON path of the object
/// (`$.submissions[3].raw`) and the key.
pub fn check_unique_keys(text: &str) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_str(text);
    Walk { path: "$".into() }.deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())
}

struct Walk {
    path: String,
}

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while seq.next_element_seed(Walk { path: format!("{}[{i}]", self.path) })?.is_some() {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = format!("{}.{key}", self.path);
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("`{key}` appears twice in {}", self.path)));
            }
            map.next_value_seed(Walk { path })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_named_with_their_place() {
        assert!(check_unique_keys(r#"{"a": 1, "b": [{"c": 2}, {"c": 3}]}"#).is_ok());
        let e = check_unique_keys(r#"{"subs": [{"raw": {"x": 1}}, {"raw": {"x": 1, "x": 2}}]}"#).unwrap_err();
        assert!(e.contains("`x` appears twice in $.subs[1].raw"), "{e}");
        assert!(check_unique_keys("[1, 2").is_err());
        assert!(check_unique_keys("{} trailing").is_err());
    }
}
