//! The settings of one sharded entity type ([`ShardingSettings`]), built in code or read from
//! `casty.toml` (`[defaults.sharding]` and an `[actors."pattern"]`'s `sharding = { ... }`).

use std::sync::Arc;
use std::time::Duration;

use super::allocation::{AllocationStrategy, LeastShardAllocation};
use crate::cluster::SplitBrainResolver;
use crate::config::ShardingConfig;

/// The settings of one sharded entity type.
///
/// Start from [`ShardingSettings::default`] (or [`from_config`](ShardingSettings::from_config))
/// and change what you need with the setters, one per field. The fields can be read, and
/// assigned too, but the type is `#[non_exhaustive]`: it cannot be built with struct-literal
/// syntax outside casty, so a field added later breaks no code.
///
/// # Examples
///
/// ```
/// use casty::sharding::{LeastShardAllocation, ShardingSettings};
/// use std::time::Duration;
///
/// let s = ShardingSettings::default()
///     .num_shards(64)
///     .role("worker")
///     .passivate_idle(None)
///     .buffer_size(10_000)
///     .allocation(LeastShardAllocation::new().max_simultaneous(5))
///     .rebalance_interval(Duration::from_secs(5))
///     .handoff_timeout(Duration::from_secs(30))
///     .retry_interval(Duration::from_secs(1))
///     .down_removal_margin(Duration::from_secs(10));
/// assert_eq!((s.num_shards, s.role.as_deref()), (64, Some("worker")));
/// assert_eq!(s.passivate_idle, None);
/// assert_eq!(s.down_removal_margin, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ShardingSettings {
    /// How many shards the type's entities are spread over (default 256; at least 1). Every
    /// node must use the same number: it decides which shard an entity belongs to
    /// ([`shard_id`](super::shard_id)).
    pub num_shards: u32,
    /// Only nodes with this role host the type's entities; the others only route messages to
    /// them (default `None`: every node hosts).
    pub role: Option<String>,
    /// How long an entity may go without a message before it is passivated, i.e. stopped until
    /// its next message (default 120 s; `None`: never).
    pub passivate_idle: Option<Duration>,
    /// How many messages a region buffers per shard while the shard's home is unknown or the
    /// shard is handing off (default 1000). Messages past it are dead letters; 0 buffers
    /// nothing.
    pub buffer_size: usize,
    /// Where shards go and when they move (default [`LeastShardAllocation`]).
    pub allocation: Arc<dyn AllocationStrategy>,
    /// Between the coordinator's rebalance rounds (default 10 s).
    pub rebalance_interval: Duration,
    /// How long a shard may take to hand off before the coordinator gives up waiting and
    /// allocates it again (default 60 s).
    pub handoff_timeout: Duration,
    /// How often a region asks the coordinator again about a request it got no answer to
    /// (default 2 s).
    pub retry_interval: Duration,
    /// How long after a node is removed from the cluster its shards may start elsewhere
    /// (default 20 s, the split-brain resolver's default `stable_after`).
    ///
    /// A node removed because it was downed may still be running on the far side of a
    /// partition: there, its own side's split-brain resolver needs `stable_after` to decide to
    /// down it, and only then does it stop its shards. Starting them here sooner could run one
    /// entity on both sides at once. Keep it at least the `stable_after` of the cluster's
    /// resolver.
    pub down_removal_margin: Duration,
}

impl Default for ShardingSettings {
    /// The defaults, the same as an empty `casty.toml`'s.
    fn default() -> Self {
        ShardingSettings {
            num_shards: 256,
            role: None,
            passivate_idle: Some(Duration::from_secs(120)),
            buffer_size: 1000,
            allocation: Arc::new(LeastShardAllocation::new()),
            rebalance_interval: Duration::from_secs(10),
            handoff_timeout: Duration::from_secs(60),
            retry_interval: Duration::from_secs(2),
            down_removal_margin: SplitBrainResolver::DEFAULT_STABLE_AFTER,
        }
    }
}

impl ShardingSettings {
    /// The settings `config` describes: a [`LeastShardAllocation`] with its
    /// `rebalance_threshold`, `max_simultaneous_rebalance` and
    /// `max_simultaneous_rebalance_percent`, and the other fields as they are.
    ///
    /// The per-type settings of a file are those of the type's name:
    /// `CastyConfig::resolve(name).sharding`, the first `[actors."pattern"]` that matches the
    /// name, field by field over `[defaults.sharding]`.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::config::parse_str;
    /// use casty::sharding::ShardingSettings;
    /// use std::time::Duration;
    ///
    /// let cfg = parse_str(
    ///     r#"
    /// [defaults.sharding]
    /// num_shards = 128
    /// passivate_idle = 300.0
    ///
    /// [actors.orders]
    /// sharding = { role = "orders", passivate_idle = "off" }
    /// "#,
    ///     None,
    /// )
    /// .unwrap();
    /// let orders = ShardingSettings::from_config(&cfg.resolve("orders").sharding);
    /// assert_eq!(orders.num_shards, 128); // from the defaults
    /// assert_eq!((orders.role.as_deref(), orders.passivate_idle), (Some("orders"), None));
    /// let carts = ShardingSettings::from_config(&cfg.resolve("carts").sharding);
    /// assert_eq!(carts.passivate_idle, Some(Duration::from_secs(300)));
    /// ```
    pub fn from_config(config: &ShardingConfig) -> ShardingSettings {
        let allocation = LeastShardAllocation::new()
            .threshold(config.rebalance_threshold as usize)
            .max_simultaneous(config.max_simultaneous_rebalance as usize)
            .max_simultaneous_percent(config.max_simultaneous_rebalance_percent);
        ShardingSettings {
            num_shards: config.num_shards.max(1),
            role: config.role.clone(),
            passivate_idle: config.passivate_idle,
            buffer_size: config.buffer_size,
            allocation: Arc::new(allocation),
            rebalance_interval: config.rebalance_interval,
            handoff_timeout: config.handoff_timeout,
            retry_interval: config.retry_interval,
            down_removal_margin: config.down_removal_margin,
        }
    }

    /// Sets how many shards the entities are spread over (0 is read as 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::ShardingSettings;
    /// assert_eq!(ShardingSettings::default().num_shards(100).num_shards, 100);
    /// assert_eq!(ShardingSettings::default().num_shards(0).num_shards, 1);
    /// ```
    pub fn num_shards(mut self, num_shards: u32) -> Self {
        self.num_shards = num_shards.max(1);
        self
    }

    /// Lets only nodes with `role` host the entities.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::ShardingSettings;
    /// let s = ShardingSettings::default().role("worker");
    /// assert_eq!(s.role.as_deref(), Some("worker"));
    /// ```
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Sets how long an entity may be idle before it is passivated (`None`: never).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::ShardingSettings;
    /// use std::time::Duration;
    /// let s = ShardingSettings::default().passivate_idle(Some(Duration::from_secs(30)));
    /// assert_eq!(s.passivate_idle, Some(Duration::from_secs(30)));
    /// assert_eq!(s.passivate_idle(None).passivate_idle, None);
    /// ```
    pub fn passivate_idle(mut self, idle: Option<Duration>) -> Self {
        self.passivate_idle = idle;
        self
    }

    /// Sets how many messages are buffered per shard while its home is unknown or it is
    /// handing off.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::ShardingSettings;
    /// assert_eq!(ShardingSettings::default().buffer_size(50).buffer_size, 50);
    /// ```
    pub fn buffer_size(mut self, messages: usize) -> Self {
        self.buffer_size = messages;
        self
    }

    /// Sets the allocation strategy.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::{LeastShardAllocation, ShardingSettings};
    /// let s = ShardingSettings::default().allocation(LeastShardAllocation::new().threshold(4));
    /// assert!(format!("{:?}", s.allocation).contains("threshold: 4"));
    /// ```
    pub fn allocation(mut self, strategy: impl AllocationStrategy) -> Self {
        self.allocation = Arc::new(strategy);
        self
    }

    /// Sets the time between rebalance rounds.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::ShardingSettings;
    /// use std::time::Duration;
    /// let s = ShardingSettings::default().rebalance_interval(Duration::from_secs(1));
    /// assert_eq!(s.rebalance_interval, Duration::from_secs(1));
    /// ```
    pub fn rebalance_interval(mut self, interval: Duration) -> Self {
        self.rebalance_interval = interval;
        self
    }

    /// Sets how long a handoff may take.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::ShardingSettings;
    /// use std::time::Duration;
    /// let s = ShardingSettings::default().handoff_timeout(Duration::from_secs(5));
    /// assert_eq!(s.handoff_timeout, Duration::from_secs(5));
    /// ```
    pub fn handoff_timeout(mut self, timeout: Duration) -> Self {
        self.handoff_timeout = timeout;
        self
    }

    /// Sets how often a region asks the coordinator again.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::ShardingSettings;
    /// use std::time::Duration;
    /// let s = ShardingSettings::default().retry_interval(Duration::from_millis(500));
    /// assert_eq!(s.retry_interval, Duration::from_millis(500));
    /// ```
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// Sets how long after a node is removed its shards may start elsewhere.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::ShardingSettings;
    /// use std::time::Duration;
    /// let s = ShardingSettings::default().down_removal_margin(Duration::from_secs(30));
    /// assert_eq!(s.down_removal_margin, Duration::from_secs(30));
    /// ```
    pub fn down_removal_margin(mut self, margin: Duration) -> Self {
        self.down_removal_margin = margin;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_str, parse_with_env, ConfigErrorKind};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn default_settings_are_the_documented_defaults() {
        let s = ShardingSettings::default();
        assert_eq!(s.num_shards, 256);
        assert_eq!(s.role, None);
        assert_eq!(s.passivate_idle, Some(secs(120)));
        assert_eq!(s.buffer_size, 1000);
        assert_eq!(s.rebalance_interval, secs(10));
        assert_eq!(s.handoff_timeout, secs(60));
        assert_eq!(s.retry_interval, secs(2));
        assert_eq!(s.down_removal_margin, secs(20));
        assert_eq!(
            format!("{:?}", s.allocation),
            format!("{:?}", LeastShardAllocation::new())
        );
    }

    #[test]
    fn an_empty_file_gives_the_default_settings() {
        let cfg = parse_str("", None).unwrap();
        assert_eq!(cfg.defaults.sharding, ShardingConfig::default());
        let from_file = ShardingSettings::from_config(&cfg.resolve("orders").sharding);
        assert_eq!(
            format!("{from_file:?}"),
            format!("{:?}", ShardingSettings::default())
        );
    }

    #[test]
    fn every_key_of_defaults_sharding_is_read() {
        let cfg = parse_str(
            r#"
[defaults.sharding]
num_shards = 64
role = "worker"
passivate_idle = 30.5
buffer_size = 20
rebalance_interval = 5
rebalance_threshold = 4
max_simultaneous_rebalance = 7
max_simultaneous_rebalance_percent = 25
handoff_timeout = 15.0
retry_interval = 0.25
down_removal_margin = 0
"#,
            None,
        )
        .unwrap();
        let s = ShardingSettings::from_config(&cfg.defaults.sharding);
        assert_eq!(s.num_shards, 64);
        assert_eq!(s.role.as_deref(), Some("worker"));
        assert_eq!(s.passivate_idle, Some(Duration::from_millis(30_500)));
        assert_eq!(s.buffer_size, 20);
        assert_eq!(s.rebalance_interval, secs(5));
        assert_eq!(s.handoff_timeout, secs(15));
        assert_eq!(s.retry_interval, Duration::from_millis(250));
        assert_eq!(s.down_removal_margin, Duration::ZERO);
        assert_eq!(
            format!("{:?}", s.allocation),
            format!(
                "{:?}",
                LeastShardAllocation::new()
                    .threshold(4)
                    .max_simultaneous(7)
                    .max_simultaneous_percent(25)
            )
        );
    }

    #[test]
    fn an_override_replaces_the_defaults_field_by_field() {
        let cfg = parse_str(
            r#"
[defaults.sharding]
num_shards = 64
role = "worker"
buffer_size = 20
handoff_timeout = 15.0

[actors."orders-.*"]
sharding = { num_shards = 512, passivate_idle = "off", retry_interval = 3, max_simultaneous_rebalance = 0 }

[actors.carts]
mailbox = { capacity = 10 }
"#,
            None,
        )
        .unwrap();
        let orders = cfg.resolve("orders-eu").sharding;
        let expected = ShardingConfig {
            num_shards: 512,
            role: Some("worker".into()),
            passivate_idle: None,
            buffer_size: 20,
            retry_interval: secs(3),
            max_simultaneous_rebalance: 0,
            handoff_timeout: secs(15),
            ..ShardingConfig::default()
        };
        assert_eq!(orders, expected);
        // A matching pattern without `sharding` keeps the defaults whole.
        assert_eq!(cfg.resolve("carts").sharding, cfg.defaults.sharding);
        assert_eq!(cfg.resolve("other").sharding, cfg.defaults.sharding);
        // Internal names get the built-in defaults.
        assert_eq!(cfg.resolve("_shards").sharding, ShardingConfig::default());
    }

    #[test]
    fn environment_variables_set_sharding_keys() {
        let env = [
            ("CASTY__DEFAULTS__SHARDING__PASSIVATE_IDLE", "off"),
            ("CASTY__DEFAULTS__SHARDING__ROLE", "worker"),
            ("CASTY__DEFAULTS__SHARDING__BUFFER_SIZE", "7"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let cfg = parse_with_env("[defaults.sharding]\npassivate_idle = 5\n", None, env).unwrap();
        let s = &cfg.defaults.sharding;
        assert_eq!(s.passivate_idle, None);
        assert_eq!(s.role.as_deref(), Some("worker"));
        assert_eq!(s.buffer_size, 7);
    }

    /// The error for `key = value` in `[defaults.sharding]` and in an override.
    fn errors(key: &str, value: &str) -> [(ConfigErrorKind, String, String); 2] {
        let defaults = format!("[defaults.sharding]\n{key} = {value}\n");
        let actor = format!("[actors.orders]\nsharding = {{ {key} = {value} }}\n");
        [defaults, actor].map(|text| {
            let e = parse_str(&text, None).unwrap_err();
            (e.kind, e.key.clone(), e.to_string())
        })
    }

    fn assert_refused(key: &str, value: &str, kind: ConfigErrorKind, message: &str) {
        let [(k1, key1, text1), (k2, key2, text2)] = errors(key, value);
        assert_eq!(
            (k1, key1.as_str()),
            (kind, &*format!("defaults.sharding.{key}"))
        );
        assert_eq!(
            (k2, key2.as_str()),
            (kind, &*format!("actors.\"orders\".sharding.{key}"))
        );
        assert!(text1.contains(message), "{text1}");
        assert!(text2.contains(message), "{text2}");
    }

    #[test]
    fn zero_shards_is_refused_naming_the_key() {
        assert_refused(
            "num_shards",
            "0",
            ConfigErrorKind::OutOfRange,
            "must be at least 1, found 0",
        );
    }

    #[test]
    fn a_role_that_is_not_a_string_is_refused_naming_the_key() {
        assert_refused(
            "role",
            "3",
            ConfigErrorKind::WrongType,
            "expected a string, found integer",
        );
    }

    #[test]
    fn a_zero_or_wordy_passivate_idle_is_refused_with_the_way_to_say_never() {
        assert_refused(
            "passivate_idle",
            "0",
            ConfigErrorKind::OutOfRange,
            "must be more than 0 seconds, found 0\n  help: write `\"off\"` to never passivate idle entities",
        );
        assert_refused(
            "passivate_idle",
            "\"never\"",
            ConfigErrorKind::WrongType,
            "expected a number of seconds or `\"off\"`, found `\"never\"`",
        );
        assert_refused(
            "passivate_idle",
            "true",
            ConfigErrorKind::WrongType,
            "expected a number of seconds or `\"off\"`, found boolean",
        );
        assert_refused(
            "passivate_idle",
            "-1",
            ConfigErrorKind::OutOfRange,
            "must be a finite number of at least 0, found -1",
        );
    }

    #[test]
    fn a_buffer_size_out_of_range_is_refused_naming_the_key() {
        assert_refused(
            "buffer_size",
            "0",
            ConfigErrorKind::OutOfRange,
            "must be between 1 and 1000000000, found 0",
        );
        assert_refused(
            "buffer_size",
            "2000000000",
            ConfigErrorKind::OutOfRange,
            "must be between 1 and 1000000000, found 2000000000",
        );
    }

    #[test]
    fn zero_intervals_and_timeouts_are_refused_naming_the_key() {
        for key in ["rebalance_interval", "handoff_timeout", "retry_interval"] {
            assert_refused(
                key,
                "0.0",
                ConfigErrorKind::OutOfRange,
                "must be more than 0 seconds, found 0",
            );
            assert_refused(
                key,
                "1e-12",
                ConfigErrorKind::OutOfRange,
                "must be more than 0 seconds, found 1e-12",
            );
        }
    }

    #[test]
    fn negative_or_endless_durations_are_refused_naming_the_key() {
        assert_refused(
            "down_removal_margin",
            "-3",
            ConfigErrorKind::OutOfRange,
            "must be a finite number of at least 0, found -3",
        );
        assert_refused(
            "rebalance_interval",
            "1e20",
            ConfigErrorKind::OutOfRange,
            "must be between 0 and 3153600000 seconds (100 years), found 1e20",
        );
        assert_refused(
            "handoff_timeout",
            "\"long\"",
            ConfigErrorKind::WrongType,
            "expected a number, found string",
        );
    }

    #[test]
    fn rebalance_limits_out_of_range_are_refused_naming_the_key() {
        assert_refused(
            "rebalance_threshold",
            "0",
            ConfigErrorKind::OutOfRange,
            "must be at least 1, found 0",
        );
        assert_refused(
            "max_simultaneous_rebalance",
            "-1",
            ConfigErrorKind::OutOfRange,
            "must be at least 0, found -1",
        );
        assert_refused(
            "max_simultaneous_rebalance_percent",
            "101",
            ConfigErrorKind::OutOfRange,
            "must be between 0 and 100, found 101",
        );
    }

    #[test]
    fn an_unknown_sharding_key_suggests_the_closest() {
        let e = parse_str("[defaults.sharding]\nbufer_size = 5\n", None).unwrap_err();
        assert_eq!(e.kind, ConfigErrorKind::UnknownKey);
        assert_eq!(e.key, "defaults.sharding.bufer_size");
        assert_eq!(
            e.help.as_deref(),
            Some("did you mean `defaults.sharding.buffer_size`?")
        );
        let e =
            parse_str("[actors.orders]\nsharding = { passivate_idel = 5 }\n", None).unwrap_err();
        assert_eq!(e.key, "actors.\"orders\".sharding.passivate_idel");
        assert_eq!(
            e.help.as_deref(),
            Some("did you mean `actors.\"orders\".sharding.passivate_idle`?")
        );
        let env = [("CASTY__DEFAULTS__SHARDING__HANDOFF_TIMOUT", "5")]
            .map(|(k, v)| (k.to_string(), v.to_string()));
        let e = parse_with_env("", None, env).unwrap_err();
        assert_eq!(e.kind, ConfigErrorKind::UnknownKey);
        assert_eq!(
            e.help.as_deref(),
            Some("did you mean CASTY__DEFAULTS__SHARDING__HANDOFF_TIMEOUT?")
        );
    }

    #[test]
    fn the_default_removal_margin_is_the_resolvers_default_stable_after() {
        assert_eq!(
            ShardingConfig::default().down_removal_margin,
            SplitBrainResolver::DEFAULT_STABLE_AFTER
        );
    }
}
