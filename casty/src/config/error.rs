//! Configuration errors: where (file, line, column, or the environment variable), which key, what
//! is wrong, and the fix where one is obvious.

use std::fmt;
use std::path::PathBuf;

/// What kind of mistake a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file could not be read.
    Io,
    /// The file is not valid TOML.
    Syntax,
    /// A key that casty does not know (the closest valid key is suggested).
    UnknownKey,
    /// A value of the wrong type (`capacity = "big"`).
    WrongType,
    /// A number out of its range (a negative or zero capacity, a negative interval).
    OutOfRange,
    /// `min_acks` greater than `replicas`.
    MinAcksExceedReplicas,
    /// An `[actors."pattern"]` key that is not a valid regex.
    InvalidPattern,
    /// An unknown mailbox overflow or supervision strategy (the valid ones are listed).
    UnknownStrategy,
    /// A `seed_nodes` entry that is not `host:port`.
    BadSeedNode,
}

/// A mistake in `casty.toml` or in a `CASTY__*` environment variable.
///
/// # Examples
///
/// ```
/// use casty::config::{parse_str, ConfigErrorKind};
/// let e = parse_str("[defaults.mailbox]\ncapacity = -5\n", None).unwrap_err();
/// assert_eq!(e.kind, ConfigErrorKind::OutOfRange);
/// assert_eq!((e.line, e.column), (Some(2), Some(12)));
/// assert_eq!(e.key, "defaults.mailbox.capacity");
/// assert!(e.to_string().starts_with("casty.toml:2:12: `defaults.mailbox.capacity`"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(Box<ConfigErrorDetails>);

/// The details of a [`ConfigError`], reachable through it (`e.kind`, `e.line`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrorDetails {
    /// The kind of mistake.
    pub kind: ConfigErrorKind,
    /// The file, if the mistake is in one.
    pub file: Option<PathBuf>,
    /// The environment variable, if the mistake is in one.
    pub env_var: Option<String>,
    /// 1-based line in the file.
    pub line: Option<usize>,
    /// 1-based column in the file.
    pub column: Option<usize>,
    /// The dotted key (`defaults.mailbox.capacity`).
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, where that is obvious.
    pub help: Option<String>,
}

impl From<ConfigErrorDetails> for ConfigError {
    fn from(d: ConfigErrorDetails) -> Self {
        ConfigError(Box::new(d))
    }
}

impl std::ops::Deref for ConfigError {
    type Target = ConfigErrorDetails;

    fn deref(&self) -> &ConfigErrorDetails {
        &self.0
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.env_var, self.line, self.column) {
            (Some(var), _, _) => write!(f, "environment variable {var}: ")?,
            (None, Some(l), Some(c)) => {
                let file = self
                    .file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "casty.toml".into());
                write!(f, "{file}:{l}:{c}: ")?
            }
            (None, _, _) => {
                if let Some(p) = &self.file {
                    write!(f, "{}: ", p.display())?
                }
            }
        }
        if !self.key.is_empty() {
            write!(f, "`{}`: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.help {
            write!(f, "\n  help: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit_once('\n')
        .map_or(before, |(_, l)| l)
        .chars()
        .count()
        + 1;
    (line, col)
}

/// The closest of `options` to `word`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(word: &str, options: &[&'a str]) -> Option<&'a str> {
    options
        .iter()
        .map(|o| (strsim::levenshtein(word, o), *o))
        .filter(|(d, o)| *d <= (o.len().max(word.len()) / 2).max(1))
        .min()
        .map(|(_, o)| o)
}

/// A number as a reader would write it: `1000`, `0.25`, or `1e300` rather than 301 digits.
pub(crate) fn number(v: f64) -> String {
    if v != 0.0 && !(1e-6..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// `s` on one line: its lines trimmed and joined with spaces.
pub(crate) fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab\n", 99), (2, 1));
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("capacty", &["capacity", "strategy"]),
            Some("capacity")
        );
        assert_eq!(closest("zzz", &["capacity", "strategy"]), None);
    }
}
