//! Secrets given in the configuration file, by an environment variable or by a file: an app's
//! management `secret` (exactly one of the three ways) and the control port's `admin_token` (at
//! most one). Errors name the key and the variable or the file, never a secret.

use std::path::Path;

use super::{ConfigError, invalid};

/// Where a secret's three keys live: `{prefix}{name}` given inline, `{prefix}{name}_env` by
/// environment variable, `{prefix}{name}_file` by file.
pub(super) struct SecretKeys<'a> {
    pub prefix: &'a str,
    pub name: &'a str,
}

impl SecretKeys<'_> {
    /// The full key of `{name}{suffix}`.
    fn key(&self, suffix: &str) -> String {
        format!("{}{}{suffix}", self.prefix, self.name)
    }
}

/// Fills `value` from `env` (the variable's value) or `file` (its content, without a trailing
/// newline). More than one of `value`, `env` and `file` set is an error; none is one only when
/// `required`.
pub(super) fn fill(
    value: &mut String,
    env: Option<&str>,
    file: Option<&Path>,
    keys: &SecretKeys,
    required: bool,
) -> Result<(), ConfigError> {
    let given = [!value.is_empty(), env.is_some(), file.is_some()].iter().filter(|&&g| g).count();
    if given > 1 || (required && given == 0) {
        let exactly = if required { "exactly" } else { "at most" };
        let name = keys.name;
        let reason = format!("set {exactly} one of {name}, {name}_env and {name}_file");
        return Err(invalid(&keys.key(""), reason));
    }
    if let Some(var) = env {
        *value = std::env::var(var).map_err(|_| {
            invalid(&keys.key("_env"), format!("the environment variable {var} is not set"))
        })?;
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            invalid(&keys.key("_file"), format!("cannot read {}: {e}", path.display()))
        })?;
        let line = text.strip_suffix("\r\n").or_else(|| text.strip_suffix('\n'));
        *value = line.unwrap_or(&text).to_owned();
    }
    Ok(())
}
