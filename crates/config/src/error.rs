use std::fmt;

/// One configuration problem: the dotted key it concerns and what is wrong with it.
///
/// `Display` gives `key: message`, the line printed (after `config error: `) when a service
/// refuses to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Dotted path of the offending key (`http.port`), or the source (`--config`) when the
    /// problem is not tied to one key.
    pub key: String,
    /// What is wrong, in one line.
    pub message: String,
}

impl ConfigError {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// Prefixes the key with the section it was found in (`port` within `http` →
    /// `http.port`).
    #[must_use]
    pub fn within(mut self, section: &str) -> Self {
        self.key = if self.key.is_empty() {
            section.to_owned()
        } else {
            format!("{section}.{}", self.key)
        };
        self
    }

    pub(crate) fn from_figment(err: figment::Error) -> Self {
        use figment::error::Kind;
        let mut path = err.path.clone();
        let message = match &err.kind {
            Kind::UnknownField(field, expected) => {
                // figment sometimes has the field in the path already.
                if path.last() != Some(field) {
                    path.push(field.clone());
                }
                if expected.is_empty() {
                    "unknown key".to_owned()
                } else {
                    format!("unknown key (expected one of: {})", expected.join(", "))
                }
            }
            Kind::MissingField(field) => {
                if path.last().map(String::as_str) != Some(field.as_ref()) {
                    path.push(field.to_string());
                }
                "missing key".to_owned()
            }
            Kind::Message(msg) => one_line(msg),
            other => one_line(&other.to_string()),
        };
        let key = if path.is_empty() {
            err.metadata
                .as_ref()
                .map(|m| m.name.to_string())
                .unwrap_or_else(|| "config".to_owned())
        } else {
            path.join(".")
        };
        Self { key, message }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}
