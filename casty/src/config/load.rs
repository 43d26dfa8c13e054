//! The loader: text (and environment overrides) in, [`CastyConfig`] or a precise
//! [`ConfigError`] out. It walks a fixed schema over the parsed document, which keeps every
//! value's position, so each error can name the line, the column and the key.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::error::{
    closest, line_col, number, one_line, ConfigError, ConfigErrorDetails, ConfigErrorKind as K,
};
use super::model::*;
use crate::actor::mailbox::Mailbox;

/// The longest duration a configuration key accepts: 100 years (of 365 days). Longer values are a
/// [`ConfigError`] (kind `OutOfRange`) naming the key, never a panic or a timer that overflows.
///
/// # Examples
///
/// ```
/// use casty::config::{parse_str, ConfigErrorKind, MAX_DURATION};
/// assert_eq!(MAX_DURATION.as_secs(), 3_153_600_000);
/// let e = parse_str("[cluster.gossip]\ninterval = 1e20\n", None).unwrap_err();
/// assert_eq!(e.kind, ConfigErrorKind::OutOfRange);
/// assert_eq!((e.key.as_str(), e.line), ("cluster.gossip.interval", Some(2)));
/// ```
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The file name searched for.
pub const FILE_NAME: &str = "casty.toml";

/// The prefix of environment overrides: `CASTY__CLUSTER__PORT=25521` sets `cluster.port`.
pub const ENV_PREFIX: &str = "CASTY__";

/// Every leaf key an environment variable may set.
const ENV_KEYS: &[&str] = &[
    "system.name",
    "defaults.mailbox.capacity",
    "defaults.mailbox.strategy",
    "defaults.supervision.strategy",
    "defaults.supervision.max_restarts",
    "defaults.supervision.within_seconds",
    "defaults.sharding.num_shards",
    "defaults.sharding.role",
    "defaults.sharding.passivate_idle",
    "defaults.sharding.buffer_size",
    "defaults.sharding.rebalance_interval",
    "defaults.sharding.rebalance_threshold",
    "defaults.sharding.max_simultaneous_rebalance",
    "defaults.sharding.max_simultaneous_rebalance_percent",
    "defaults.sharding.handoff_timeout",
    "defaults.sharding.retry_interval",
    "defaults.sharding.down_removal_margin",
    "defaults.replication.replicas",
    "defaults.replication.min_acks",
    "defaults.replication.ack_timeout",
    "cluster.host",
    "cluster.port",
    "cluster.seed_nodes",
    "cluster.roles",
    "cluster.gossip.interval",
    "cluster.heartbeat.interval",
    "cluster.heartbeat.availability_check_interval",
    "cluster.failure_detector.threshold",
    "cluster.failure_detector.max_sample_size",
    "cluster.failure_detector.min_std_deviation_ms",
    "cluster.failure_detector.acceptable_heartbeat_pause_ms",
    "cluster.failure_detector.first_heartbeat_estimate_ms",
];

/// The keys of `[defaults.sharding]` and of an override's `sharding = { ... }`.
const SHARDING_KEYS: &[&str] = &[
    "num_shards",
    "role",
    "passivate_idle",
    "buffer_size",
    "rebalance_interval",
    "rebalance_threshold",
    "max_simultaneous_rebalance",
    "max_simultaneous_rebalance_percent",
    "handoff_timeout",
    "retry_interval",
    "down_removal_margin",
];

/// How `passivate_idle` says "never".
const PASSIVATE_OFF: &str = "off";

/// Loads the configuration: from `path` if given, else from the first `casty.toml` found walking
/// up from the current directory, else the built-in defaults. `CASTY__*` environment variables
/// override the file in every case.
///
/// # Errors
///
/// A [`ConfigError`] naming the file, line, column and key of the first mistake.
///
/// # Examples
///
/// ```
/// let dir = std::env::temp_dir().join(format!("casty-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let file = dir.join("casty.toml");
/// std::fs::write(&file, "[system]\nname = \"my-app\"\n").unwrap();
/// let cfg = casty::config::load_config(Some(&file)).unwrap();
/// assert_eq!(cfg.system.name, "my-app");
/// assert_eq!(cfg.source.as_deref(), Some(file.as_path()));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn load_config(path: Option<&Path>) -> std::result::Result<CastyConfig, ConfigError> {
    let path = match path {
        Some(p) => Some(p.to_path_buf()),
        None => std::env::current_dir().ok().and_then(|d| discover(&d)),
    };
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(&p).map_err(|e| {
                ConfigError::from(ConfigErrorDetails {
                    kind: K::Io,
                    file: Some(p.clone()),
                    env_var: None,
                    line: None,
                    column: None,
                    key: String::new(),
                    message: format!("cannot read the configuration file: {e}"),
                    help: None,
                })
            })?;
            parse_with_env(&text, Some(&p), env)
        }
        None => parse_with_env("", None, env),
    }
}

/// The first `casty.toml` in `start` or one of its ancestors.
pub fn discover(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|d| d.join(FILE_NAME))
        .find(|p| p.is_file())
}

/// Parses configuration text, with no environment overrides. `file` is only used in errors.
///
/// # Errors
///
/// A [`ConfigError`] for the first mistake.
pub fn parse_str(text: &str, file: Option<&Path>) -> std::result::Result<CastyConfig, ConfigError> {
    parse_with_env(text, file, Vec::new())
}

/// Parses configuration text, then applies `CASTY__A__B=value` overrides from `env` (pairs of
/// variable name and value; names without the prefix are ignored). A value is read as a TOML
/// value (`25521`, `1.5`, `["a:1"]`) and otherwise as a string.
///
/// # Errors
///
/// A [`ConfigError`] for the first mistake, in the file or in a variable.
///
/// # Examples
///
/// ```
/// let env = vec![("CASTY__CLUSTER__PORT".to_string(), "25521".to_string())];
/// let cfg = casty::config::parse_with_env("[cluster]\nport = 1\n", None, env).unwrap();
/// assert_eq!(cfg.cluster.port, 25521);
/// ```
pub fn parse_with_env(
    text: &str,
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> std::result::Result<CastyConfig, ConfigError> {
    let mut envs: Vec<(String, String, String)> = Vec::new(); // (var, dotted key, value)
    for (var, value) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let key = rest
            .split("__")
            .collect::<Vec<_>>()
            .join(".")
            .to_lowercase();
        envs.push((var, key, value));
    }
    let reader = Reader {
        text,
        file,
        env: &envs,
    };
    for (var, key, _) in &envs {
        if !ENV_KEYS.contains(&key.as_str()) {
            let hint = closest(key, ENV_KEYS).map(|k| {
                format!(
                    "did you mean {ENV_PREFIX}{}?",
                    k.replace('.', "__").to_uppercase()
                )
            });
            return Err(reader.env_err(
                K::UnknownKey,
                var,
                key,
                format!("`{key}` is not a key an environment variable can set"),
                hint,
            ));
        }
    }
    let doc = DeTable::parse(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|s| line_col(text, s.start))
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        ConfigError::from(ConfigErrorDetails {
            kind: K::Syntax,
            file: file.map(Path::to_path_buf),
            env_var: None,
            line,
            column,
            key: String::new(),
            message: format!("invalid TOML: {}", e.message().trim()),
            help: None,
        })
    })?;
    let mut cfg = reader.config(doc.get_ref())?;
    cfg.source = file.map(Path::to_path_buf);
    Ok(cfg)
}

/// Where a value came from, for errors: a span in the file, or an environment variable.
#[derive(Clone)]
struct Location<'t> {
    key: String,
    span: Option<Range<usize>>,
    env_var: Option<&'t str>,
}

/// A value read from the file or from an environment variable.
struct Leaf<'t> {
    value: DeValue<'t>,
    at: Location<'t>,
}

struct Reader<'a> {
    text: &'a str,
    file: Option<&'a Path>,
    env: &'a [(String, String, String)],
}

type Result<T> = std::result::Result<T, ConfigError>;

impl<'a> Reader<'a> {
    /// The error at `at`.
    fn err(
        &self,
        at: &Location<'_>,
        kind: K,
        message: String,
        help: Option<String>,
    ) -> ConfigError {
        let (line, column) = match (at.env_var, &at.span) {
            (None, Some(span)) => {
                let (l, c) = line_col(self.text, span.start);
                (Some(l), Some(c))
            }
            _ => (None, None),
        };
        ConfigError::from(ConfigErrorDetails {
            kind,
            file: at
                .env_var
                .is_none()
                .then(|| self.file.map(Path::to_path_buf))
                .flatten(),
            env_var: at.env_var.map(str::to_string),
            line,
            column,
            key: at.key.clone(),
            message,
            help,
        })
    }

    fn file_err(
        &self,
        kind: K,
        span: Range<usize>,
        key: &str,
        message: String,
        help: Option<String>,
    ) -> ConfigError {
        let at = Location {
            key: key.to_string(),
            span: Some(span),
            env_var: None,
        };
        self.err(&at, kind, message, help)
    }

    fn env_err(
        &self,
        kind: K,
        var: &str,
        key: &str,
        message: String,
        help: Option<String>,
    ) -> ConfigError {
        let at = Location {
            key: key.to_string(),
            span: None,
            env_var: Some(var),
        };
        self.err(&at, kind, message, help)
    }

    fn join(path: &str, key: &str) -> String {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    }

    /// Refuses keys of `t` that are not in `known`.
    fn known_keys(&self, t: &DeTable<'_>, path: &str, known: &[&str]) -> Result<()> {
        for (k, _) in t.iter() {
            let name: &str = k.get_ref();
            if !known.contains(&name) {
                let full = Self::join(path, name);
                let help = match closest(name, known) {
                    Some(c) => Some(format!("did you mean `{}`?", Self::join(path, c))),
                    None => Some(format!(
                        "valid keys here: {}",
                        known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                };
                return Err(self.file_err(
                    K::UnknownKey,
                    k.span(),
                    &full,
                    format!("unknown key `{name}`"),
                    help,
                ));
            }
        }
        Ok(())
    }

    /// The sub-table `key` of `t`, which must be a table if present.
    fn table<'t>(
        &self,
        t: Option<&'t DeTable<'t>>,
        path: &str,
        key: &str,
        known: &[&str],
    ) -> Result<Option<&'t DeTable<'t>>> {
        let Some(v) = t.and_then(|t| t.get(key)) else {
            return Ok(None);
        };
        let full = Self::join(path, key);
        match v.get_ref() {
            DeValue::Table(sub) => {
                self.known_keys(sub, &full, known)?;
                Ok(Some(sub))
            }
            other => Err(self.file_err(
                K::WrongType,
                v.span(),
                &full,
                format!("expected a table, found {}", other.type_str()),
                Some(format!(
                    "write `[{full}]` with its keys below it, or `{key} = {{ ... }}`"
                )),
            )),
        }
    }

    /// A leaf: an environment override if one is set, else the file's value.
    fn leaf<'t>(&self, t: Option<&'t DeTable<'t>>, path: &str, key: &str) -> Option<Leaf<'t>>
    where
        'a: 't,
    {
        let full = Self::join(path, key);
        if let Some((var, _, value)) = self.env.iter().rev().find(|(_, k, _)| *k == full) {
            let parsed = match DeValue::parse(value) {
                Ok(v) => v.into_inner(),
                Err(_) => DeValue::String(value.as_str().into()),
            };
            return Some(Leaf {
                value: parsed,
                at: Location {
                    key: full,
                    span: None,
                    env_var: Some(var.as_str()),
                },
            });
        }
        let v: &Spanned<DeValue<'t>> = t?.get(key)?;
        Some(Leaf {
            value: v.get_ref().clone(),
            at: Location {
                key: full,
                span: Some(v.span()),
                env_var: None,
            },
        })
    }

    fn wrong_type(&self, leaf: &Leaf<'_>, expected: &str) -> ConfigError {
        self.err(
            &leaf.at,
            K::WrongType,
            format!("expected {expected}, found {}", leaf.value.type_str()),
            None,
        )
    }

    fn int(&self, leaf: &Leaf<'_>) -> Result<i128> {
        match &leaf.value {
            DeValue::Integer(i) => i128::from_str_radix(&i.as_str().replace('_', ""), i.radix())
                .map_err(|_| {
                    self.err(&leaf.at, K::OutOfRange, "integer out of range".into(), None)
                }),
            _ => Err(self.wrong_type(leaf, "an integer")),
        }
    }

    /// An integer in `min..=max`.
    fn ranged<T: TryFrom<i128>>(&self, leaf: &Leaf<'_>, min: i128, max: i128) -> Result<T> {
        let v = self.int(leaf)?;
        if v < min || v > max {
            let help = (v < 0 && min >= 0)
                .then(|| format!("use a positive number, e.g. `{}`", v.unsigned_abs()));
            return Err(self.err(
                &leaf.at,
                K::OutOfRange,
                if max == i128::from(u64::MAX) || max == i128::from(u32::MAX) {
                    format!("must be at least {min}, found {v}")
                } else {
                    format!("must be between {min} and {max}, found {v}")
                },
                help,
            ));
        }
        T::try_from(v).map_err(|_| self.err(&leaf.at, K::OutOfRange, "out of range".into(), None))
    }

    fn float(&self, leaf: &Leaf<'_>) -> Result<f64> {
        match &leaf.value {
            DeValue::Float(f) => f
                .as_str()
                .replace('_', "")
                .parse::<f64>()
                .map_err(|_| self.wrong_type(leaf, "a number")),
            DeValue::Integer(_) => Ok(self.int(leaf)? as f64),
            _ => Err(self.wrong_type(leaf, "a number")),
        }
    }

    fn non_negative(&self, leaf: &Leaf<'_>) -> Result<f64> {
        let v = self.float(leaf)?;
        if !v.is_finite() || v < 0.0 {
            return Err(self.err(
                &leaf.at,
                K::OutOfRange,
                format!("must be a finite number of at least 0, found {v}"),
                None,
            ));
        }
        Ok(v)
    }

    /// A duration written in `unit`s, `per_second` of them to a second, from 0 up to
    /// [`MAX_DURATION`]. Anything else is an error, never a panic in `Duration`.
    fn duration(&self, leaf: &Leaf<'_>, unit: &str, per_second: f64) -> Result<Duration> {
        let v = self.non_negative(leaf)?;
        let max = MAX_DURATION.as_secs_f64() * per_second;
        let d = if v <= max {
            Duration::try_from_secs_f64(v / per_second).ok()
        } else {
            None
        };
        d.ok_or_else(|| {
            self.err(
                &leaf.at,
                K::OutOfRange,
                format!(
                    "must be between 0 and {} {unit} (100 years), found {}",
                    number(max),
                    number(v)
                ),
                None,
            )
        })
    }

    fn seconds(&self, leaf: &Leaf<'_>) -> Result<Duration> {
        self.duration(leaf, "seconds", 1.0)
    }

    /// Seconds, more than 0: the pace of something that repeats or waits.
    fn positive_seconds(&self, leaf: &Leaf<'_>) -> Result<Duration> {
        let d = self.seconds(leaf)?;
        if d.is_zero() {
            return Err(self.err(
                &leaf.at,
                K::OutOfRange,
                format!(
                    "must be more than 0 seconds, found {}",
                    number(self.float(leaf)?)
                ),
                None,
            ));
        }
        Ok(d)
    }

    fn millis(&self, leaf: &Leaf<'_>) -> Result<Duration> {
        self.duration(leaf, "ms", 1000.0)
    }

    fn string(&self, leaf: &Leaf<'_>) -> Result<String> {
        match &leaf.value {
            DeValue::String(s) => Ok(s.to_string()),
            _ => Err(self.wrong_type(leaf, "a string")),
        }
    }

    /// An array of strings, each with its own location.
    fn strings<'t>(&self, leaf: &Leaf<'t>) -> Result<Vec<(String, Location<'t>)>> {
        match &leaf.value {
            DeValue::Array(items) => items
                .iter()
                .map(|v| {
                    let at = Location {
                        span: leaf.at.env_var.is_none().then(|| v.span()),
                        ..leaf.at.clone()
                    };
                    match v.get_ref() {
                        DeValue::String(s) => Ok((s.to_string(), at)),
                        other => Err(self.err(
                            &at,
                            K::WrongType,
                            format!(
                                "expected an array of strings, found an element of type {}",
                                other.type_str()
                            ),
                            None,
                        )),
                    }
                })
                .collect(),
            _ => Err(self.wrong_type(leaf, "an array of strings")),
        }
    }

    fn strategy<T>(
        &self,
        leaf: &Leaf<'_>,
        names: &[&str],
        parse: fn(&str) -> Option<T>,
    ) -> Result<T> {
        let s = self.string(leaf)?;
        parse(&s).ok_or_else(|| {
            let list = names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let help = match closest(&s, names) {
                Some(c) => format!("did you mean `{c}`? valid strategies: {list}"),
                None => format!("valid strategies: {list}"),
            };
            self.err(
                &leaf.at,
                K::UnknownStrategy,
                format!("unknown strategy `{s}`"),
                Some(help),
            )
        })
    }

    // ------------------------------------------------------------------ sections

    fn config(&self, doc: &'a DeTable<'a>) -> Result<CastyConfig> {
        self.known_keys(doc, "", &["system", "defaults", "cluster", "actors"])?;
        let mut cfg = CastyConfig::default();
        let system = self.table(Some(doc), "", "system", &["name"])?;
        if let Some(l) = self.leaf(system, "system", "name") {
            cfg.system.name = self.string(&l)?;
        }
        let defaults = self.table(
            Some(doc),
            "",
            "defaults",
            &["mailbox", "supervision", "sharding", "replication"],
        )?;
        cfg.defaults = self.defaults(defaults)?;
        cfg.cluster = self.cluster(self.table(
            Some(doc),
            "",
            "cluster",
            &[
                "host",
                "port",
                "seed_nodes",
                "roles",
                "gossip",
                "heartbeat",
                "failure_detector",
            ],
        )?)?;
        cfg.actors = self.actors(doc, &cfg.defaults.replication)?;
        Ok(cfg)
    }

    fn mailbox(&self, t: Option<&'a DeTable<'a>>, path: &str) -> Result<MailboxOverride> {
        let mut m = MailboxOverride::default();
        if let Some(l) = self.leaf(t, path, "capacity") {
            let max = Mailbox::MAX_CAPACITY as i128;
            let v = self.int(&l)?;
            if v > max {
                return Err(self.err(
                    &l.at,
                    K::OutOfRange,
                    format!("must be between 1 and {max}, found {v}"),
                    Some(format!(
                        "the largest capacity is {max}; leave `capacity` out for an unbounded mailbox"
                    )),
                ));
            }
            m.capacity = Some(self.ranged(&l, 1, max)?);
        }
        if let Some(l) = self.leaf(t, path, "strategy") {
            m.overflow = Some(self.strategy(&l, &OVERFLOW_NAMES, overflow_from_name)?);
        }
        Ok(m)
    }

    fn supervision(&self, t: Option<&'a DeTable<'a>>, path: &str) -> Result<SupervisionOverride> {
        let mut s = SupervisionOverride::default();
        if let Some(l) = self.leaf(t, path, "strategy") {
            s.directive = Some(self.strategy(&l, &DIRECTIVE_NAMES, directive_from_name)?);
        }
        if let Some(l) = self.leaf(t, path, "max_restarts") {
            s.max_restarts = Some(self.ranged(&l, 0, i128::from(u32::MAX))?);
        }
        if let Some(l) = self.leaf(t, path, "within_seconds") {
            s.within = Some(self.seconds(&l)?);
        }
        Ok(s)
    }

    fn sharding(&self, t: Option<&'a DeTable<'a>>, path: &str) -> Result<ShardingOverride> {
        let mut o = ShardingOverride::default();
        if let Some(l) = self.leaf(t, path, "num_shards") {
            o.num_shards = Some(self.ranged(&l, 1, i128::from(u32::MAX))?);
        }
        if let Some(l) = self.leaf(t, path, "role") {
            o.role = Some(self.string(&l)?);
        }
        if let Some(l) = self.leaf(t, path, "passivate_idle") {
            o.passivate_idle = Some(self.passivate_idle(&l)?);
        }
        if let Some(l) = self.leaf(t, path, "buffer_size") {
            let max = Mailbox::MAX_CAPACITY as i128;
            o.buffer_size = Some(self.ranged(&l, 1, max)?);
        }
        if let Some(l) = self.leaf(t, path, "rebalance_interval") {
            o.rebalance_interval = Some(self.positive_seconds(&l)?);
        }
        if let Some(l) = self.leaf(t, path, "rebalance_threshold") {
            o.rebalance_threshold = Some(self.ranged(&l, 1, i128::from(u32::MAX))?);
        }
        if let Some(l) = self.leaf(t, path, "max_simultaneous_rebalance") {
            o.max_simultaneous_rebalance = Some(self.ranged(&l, 0, i128::from(u32::MAX))?);
        }
        if let Some(l) = self.leaf(t, path, "max_simultaneous_rebalance_percent") {
            o.max_simultaneous_rebalance_percent = Some(self.ranged(&l, 0, 100)?);
        }
        if let Some(l) = self.leaf(t, path, "handoff_timeout") {
            o.handoff_timeout = Some(self.positive_seconds(&l)?);
        }
        if let Some(l) = self.leaf(t, path, "retry_interval") {
            o.retry_interval = Some(self.positive_seconds(&l)?);
        }
        if let Some(l) = self.leaf(t, path, "down_removal_margin") {
            o.down_removal_margin = Some(self.seconds(&l)?);
        }
        Ok(o)
    }

    /// `passivate_idle`: seconds, more than 0, or `"off"` (`None`: never).
    fn passivate_idle(&self, leaf: &Leaf<'_>) -> Result<Option<Duration>> {
        let off_help = || {
            Some(format!(
                "write `\"{PASSIVATE_OFF}\"` to never passivate idle entities"
            ))
        };
        if let DeValue::String(s) = &leaf.value {
            if s.as_ref() == PASSIVATE_OFF {
                return Ok(None);
            }
            return Err(self.err(
                &leaf.at,
                K::WrongType,
                format!("expected a number of seconds or `\"{PASSIVATE_OFF}\"`, found `\"{s}\"`"),
                off_help(),
            ));
        }
        let d = self.seconds(leaf).map_err(|e| match e.kind {
            K::WrongType => self.err(
                &leaf.at,
                K::WrongType,
                format!(
                    "expected a number of seconds or `\"{PASSIVATE_OFF}\"`, found {}",
                    leaf.value.type_str()
                ),
                None,
            ),
            _ => e,
        })?;
        if d.is_zero() {
            return Err(self.err(
                &leaf.at,
                K::OutOfRange,
                format!(
                    "must be more than 0 seconds, found {}",
                    number(self.float(leaf)?)
                ),
                off_help(),
            ));
        }
        Ok(Some(d))
    }

    fn replication(&self, t: Option<&'a DeTable<'a>>, path: &str) -> Result<ReplicationOverride> {
        let mut r = ReplicationOverride::default();
        if let Some(l) = self.leaf(t, path, "replicas") {
            r.replicas = Some(self.ranged(&l, 1, i128::from(u32::MAX))?);
        }
        if let Some(l) = self.leaf(t, path, "min_acks") {
            r.min_acks = Some(self.ranged(&l, 0, i128::from(u32::MAX))?);
        }
        if let Some(l) = self.leaf(t, path, "ack_timeout") {
            r.ack_timeout = Some(self.seconds(&l)?);
        }
        Ok(r)
    }

    /// `min_acks` must not exceed `replicas` once both are resolved.
    fn check_acks(
        &self,
        r: &ReplicationConfig,
        t: Option<&'a DeTable<'a>>,
        path: &str,
    ) -> Result<()> {
        if r.min_acks <= r.replicas {
            return Ok(());
        }
        // Point at `min_acks` where it is set, else at the `replicas` that undercuts it.
        let key = Self::join(path, "min_acks");
        let at = self
            .leaf(t, path, "min_acks")
            .or_else(|| self.leaf(t, path, "replicas"))
            .map_or(
                Location {
                    key: key.clone(),
                    span: None,
                    env_var: None,
                },
                |l| Location { key, ..l.at },
            );
        Err(self.err(
            &at,
            K::MinAcksExceedReplicas,
            format!(
                "min_acks ({}) is greater than replicas ({}): a write could never be acknowledged",
                r.min_acks, r.replicas
            ),
            Some(format!("set min_acks to at most {}", r.replicas)),
        ))
    }

    fn defaults(&self, d: Option<&'a DeTable<'a>>) -> Result<Defaults> {
        let mut out = Defaults::default();
        let mb = self.table(d, "defaults", "mailbox", &["capacity", "strategy"])?;
        let m = self.mailbox(mb, "defaults.mailbox")?;
        out.mailbox = MailboxConfig {
            capacity: m.capacity,
            overflow: m.overflow.unwrap_or(MailboxConfig::default().overflow),
        };
        let sv = self.table(
            d,
            "defaults",
            "supervision",
            &["strategy", "max_restarts", "within_seconds"],
        )?;
        let s = self.supervision(sv, "defaults.supervision")?;
        if sv.is_some() || s != SupervisionOverride::default() {
            let base = SupervisionConfig::default();
            out.supervision = Some(SupervisionConfig {
                directive: s.directive.unwrap_or(base.directive),
                max_restarts: s.max_restarts.unwrap_or(base.max_restarts),
                within: s.within.unwrap_or(base.within),
            });
        }
        let sh = self.table(d, "defaults", "sharding", SHARDING_KEYS)?;
        out.sharding = self
            .sharding(sh, "defaults.sharding")?
            .over(&ShardingConfig::default());
        let rp = self.table(
            d,
            "defaults",
            "replication",
            &["replicas", "min_acks", "ack_timeout"],
        )?;
        let r = self.replication(rp, "defaults.replication")?;
        let base = ReplicationConfig::default();
        out.replication = ReplicationConfig {
            replicas: r.replicas.unwrap_or(base.replicas),
            min_acks: r.min_acks.unwrap_or(base.min_acks),
            ack_timeout: r.ack_timeout.unwrap_or(base.ack_timeout),
        };
        self.check_acks(&out.replication, rp, "defaults.replication")?;
        Ok(out)
    }

    fn cluster(&self, c: Option<&'a DeTable<'a>>) -> Result<ClusterConfig> {
        let mut out = ClusterConfig::default();
        let p = "cluster";
        if let Some(l) = self.leaf(c, p, "host") {
            out.host = self.string(&l)?;
        }
        if let Some(l) = self.leaf(c, p, "port") {
            out.port = self.ranged(&l, 0, 65535)?;
        }
        if let Some(l) = self.leaf(c, p, "seed_nodes") {
            for (s, at) in self.strings(&l)? {
                let node = SeedNode::parse(&s).ok_or_else(|| {
                    self.err(
                        &at,
                        K::BadSeedNode,
                        format!("seed node `{s}` is not `host:port`"),
                        Some("write it as `host:port` with a port from 0 to 65535, e.g. `node1:25520`".into()),
                    )
                })?;
                out.seed_nodes.push(node);
            }
        }
        if let Some(l) = self.leaf(c, p, "roles") {
            out.roles = self.strings(&l)?.into_iter().map(|(s, _)| s).collect();
        }
        let g = self.table(c, p, "gossip", &["interval"])?;
        if let Some(l) = self.leaf(g, "cluster.gossip", "interval") {
            out.gossip.interval = self.seconds(&l)?;
        }
        let h = self.table(
            c,
            p,
            "heartbeat",
            &["interval", "availability_check_interval"],
        )?;
        if let Some(l) = self.leaf(h, "cluster.heartbeat", "interval") {
            out.heartbeat.interval = self.seconds(&l)?;
        }
        if let Some(l) = self.leaf(h, "cluster.heartbeat", "availability_check_interval") {
            out.heartbeat.availability_check_interval = self.seconds(&l)?;
        }
        let fp = "cluster.failure_detector";
        let f = self.table(
            c,
            p,
            "failure_detector",
            &[
                "threshold",
                "max_sample_size",
                "min_std_deviation_ms",
                "acceptable_heartbeat_pause_ms",
                "first_heartbeat_estimate_ms",
            ],
        )?;
        let fd = &mut out.failure_detector;
        if let Some(l) = self.leaf(f, fp, "threshold") {
            fd.threshold = self.non_negative(&l)?;
        }
        if let Some(l) = self.leaf(f, fp, "max_sample_size") {
            fd.max_sample_size = self.ranged(&l, 1, i128::from(u32::MAX))?;
        }
        if let Some(l) = self.leaf(f, fp, "min_std_deviation_ms") {
            fd.min_std_deviation = self.millis(&l)?;
        }
        if let Some(l) = self.leaf(f, fp, "acceptable_heartbeat_pause_ms") {
            fd.acceptable_heartbeat_pause = self.millis(&l)?;
        }
        if let Some(l) = self.leaf(f, fp, "first_heartbeat_estimate_ms") {
            fd.first_heartbeat_estimate = self.millis(&l)?;
        }
        Ok(out)
    }

    fn actors(
        &self,
        doc: &'a DeTable<'a>,
        defaults: &ReplicationConfig,
    ) -> Result<Vec<ActorOverride>> {
        let Some(v) = doc.get("actors") else {
            return Ok(Vec::new());
        };
        let DeValue::Table(actors) = v.get_ref() else {
            return Err(self.file_err(
                K::WrongType,
                v.span(),
                "actors",
                format!(
                    "expected a table of actor patterns, found {}",
                    v.get_ref().type_str()
                ),
                Some("write `[actors.\"pattern\"]` sections".into()),
            ));
        };
        // Overrides come from the file only: no environment variable sets a pattern's keys.
        let file = self.file_only();
        let mut out = Vec::new();
        for (k, v) in actors.iter() {
            let pattern: &str = k.get_ref();
            let path = format!("actors.\"{pattern}\"");
            let regex = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                self.file_err(
                    K::InvalidPattern,
                    k.span(),
                    &path,
                    format!("`{pattern}` is not a valid pattern: {}", one_line(&e.to_string())),
                    Some("patterns are regular expressions matched against the whole actor name; in TOML strings write `\\\\d`".into()),
                )
            })?;
            let DeValue::Table(t) = v.get_ref() else {
                return Err(self.file_err(
                    K::WrongType,
                    v.span(),
                    &path,
                    format!("expected a table, found {}", v.get_ref().type_str()),
                    None,
                ));
            };
            self.known_keys(
                t,
                &path,
                &["mailbox", "supervision", "sharding", "replication"],
            )?;
            let t = Some(t);
            let mb = self.table(t, &path, "mailbox", &["capacity", "strategy"])?;
            let mailbox = file.mailbox(mb, &format!("{path}.mailbox"))?;
            let sv = self.table(
                t,
                &path,
                "supervision",
                &["strategy", "max_restarts", "within_seconds"],
            )?;
            let supervision = match sv {
                Some(_) => Some(file.supervision(sv, &format!("{path}.supervision"))?),
                None => None,
            };
            let sh = self.table(t, &path, "sharding", SHARDING_KEYS)?;
            let sharding = file.sharding(sh, &format!("{path}.sharding"))?;
            let rp = self.table(
                t,
                &path,
                "replication",
                &["replicas", "min_acks", "ack_timeout"],
            )?;
            let rpath = format!("{path}.replication");
            let replication = file.replication(rp, &rpath)?;
            let merged = ReplicationConfig {
                replicas: replication.replicas.unwrap_or(defaults.replicas),
                min_acks: replication.min_acks.unwrap_or(defaults.min_acks),
                ack_timeout: defaults.ack_timeout,
            };
            file.check_acks(&merged, rp, &rpath)?;
            out.push(ActorOverride {
                pattern: pattern.to_string(),
                regex,
                mailbox,
                supervision,
                sharding,
                replication,
            });
        }
        Ok(out)
    }

    /// A reader over the same file that ignores environment overrides.
    fn file_only(&self) -> Reader<'a> {
        Reader {
            text: self.text,
            file: self.file,
            env: &[],
        }
    }
}
