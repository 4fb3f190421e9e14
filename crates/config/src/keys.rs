//! The dotted key paths of a configuration, so a documented YAML file can be checked
//! against the config type it documents (a reference that cannot drift).

use std::collections::BTreeSet;

use figment::Figment;
use figment::providers::{Format, Serialized, Yaml};
use figment::value::{Dict, Value};
use serde::Serialize;

use crate::ConfigError;

/// Every leaf key of `T::default()` as a dotted path (`http.port`); a `None` field counts,
/// an empty map is a leaf.
pub fn default_key_paths<T: Default + Serialize>() -> Result<BTreeSet<String>, ConfigError> {
    let dict: Dict = Figment::from(Serialized::defaults(T::default()))
        .extract()
        .map_err(ConfigError::from_figment)?;
    Ok(paths(&dict))
}

/// Every leaf key of a YAML document as a dotted path (comments are not keys).
pub fn yaml_key_paths(yaml: &str) -> Result<BTreeSet<String>, ConfigError> {
    let dict: Dict = Figment::from(Yaml::string(yaml))
        .extract()
        .map_err(ConfigError::from_figment)?;
    Ok(paths(&dict))
}

fn paths(dict: &Dict) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect(dict, "", &mut out);
    out
}

fn collect(dict: &Dict, prefix: &str, out: &mut BTreeSet<String>) {
    for (key, value) in dict {
        let path = format!("{prefix}{key}");
        match value {
            Value::Dict(_, inner) if !inner.is_empty() => collect(inner, &format!("{path}."), out),
            _ => {
                out.insert(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[derive(Default, Serialize)]
    struct Http {
        host: String,
        port: u16,
    }

    #[derive(Default, Serialize)]
    struct Sample {
        http: Http,
        name: Option<String>,
    }

    #[test]
    fn default_and_yaml_paths_agree() {
        let yaml = "# a comment\nhttp:\n  host: x # inline\n  port: 1\nname: null\n";
        assert_eq!(
            default_key_paths::<Sample>().unwrap(),
            yaml_key_paths(yaml).unwrap()
        );
        let yaml = "http:\n  host: x\nname: null\n";
        assert_ne!(
            default_key_paths::<Sample>().unwrap(),
            yaml_key_paths(yaml).unwrap()
        );
    }
}
