//! How a configuration reaches the actor system: [`CastyConfig`] is a source of spawn defaults
//! (the core's [`SpawnDefaults`] trait), and [`ActorSystemBuilder::config`] installs one. The core
//! never names the configuration; this module plugs it in from above, as `remote` adds
//! `start_remote`.

use std::sync::Arc;

use crate::actor::system::{ActorDefaults, ActorSystemBuilder, SpawnDefaults};
use crate::config::CastyConfig;

impl SpawnDefaults for CastyConfig {
    fn for_actor(&self, name: &str) -> ActorDefaults {
        let settings = self.resolve(name);
        ActorDefaults {
            mailbox: Some(settings.mailbox.to_mailbox()),
            supervision: settings.supervision.map(|s| s.to_strategy()),
        }
    }
}

impl ActorSystemBuilder {
    /// Applies a configuration (see [`crate::config`]): its `[system] name` unless `.name(..)`
    /// is also given, and at every spawn the mailbox and supervision the file resolves for the
    /// actor's name. A mailbox in `SpawnOptions` or a `Behaviors::supervise` in code wins over the
    /// file.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use casty::{config, ActorSystem, Behaviors};
    /// let cfg = config::parse_str(
    ///     "[system]\nname = \"my-app\"\n[actors.orders]\nmailbox = { capacity = 10 }\n",
    ///     None,
    /// )
    /// .unwrap();
    /// let system = ActorSystem::builder().config(cfg).build();
    /// assert_eq!(system.name(), "my-app");
    /// let orders = system.spawn(Behaviors::ignore::<u32>(), "orders").unwrap();
    /// assert_eq!(orders.mailbox().and_then(|m| m.capacity()), Some(10));
    /// # system.shutdown().await; }
    /// ```
    pub fn config(mut self, config: CastyConfig) -> Self {
        self.default_name = Some(config.system.name.clone());
        let config = Arc::new(config);
        // Layers above the core (cluster sharding) read their own sections from it.
        let ext = config.clone();
        self.extensions.push(Box::new(move |system| {
            system.put_extension(ext);
        }));
        self.spawn_defaults(config)
    }
}
