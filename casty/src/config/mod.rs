//! `casty.toml`: configuration as a pure function from text to typed structs.
//!
//! [`load_config`] finds the file (an explicit path, or the first `casty.toml` walking up from the
//! current directory, as `pyproject.toml` discovery does), reads it, applies `CASTY__A__B=value`
//! environment overrides, and returns a [`CastyConfig`]. There are no globals: the config is a
//! value, handed to `ActorSystem::builder().config(cfg)`.
//!
//! Resolution for an actor is per-actor override (the first `[actors."pattern"]` whose regex
//! fully matches the name, in file order) > `[defaults.*]` > the built-in default, field by field
//! ([`CastyConfig::resolve`]). Names starting with `_` are internal and never matched.
//!
//! The loader walks a fixed schema over a parsed document that keeps every key's and value's byte
//! span, so every mistake becomes a [`ConfigError`] with the file, line, column and key, and a
//! fix where one is obvious. Nothing in here panics on input.

mod error;
mod load;
mod model;
mod spawn;

pub use error::{ConfigError, ConfigErrorDetails, ConfigErrorKind};
pub use load::{
    discover, load_config, parse_str, parse_with_env, ENV_PREFIX, FILE_NAME, MAX_DURATION,
};
pub use model::{
    ActorOverride, ActorSettings, CastyConfig, ClusterConfig, Defaults, FailureDetectorConfig,
    GossipConfig, HeartbeatConfig, MailboxConfig, MailboxOverride, ReplicationConfig,
    ReplicationOverride, SeedNode, ShardingConfig, ShardingOverride, SupervisionConfig,
    SupervisionOverride, SystemConfig,
};
