//! Node addresses: `casty://system@host:port`, and actor addresses under them.
//!
//! A node is named by its system name, host and port; its *incarnation* uid (R1) travels in the
//! handshake, not in the address, so an address names whatever node currently listens there.

use std::fmt;
use std::str::FromStr;

/// The address of a remote-enabled system: `casty://system@host:port`.
///
/// # Examples
///
/// ```
/// use casty::remote::NodeAddress;
/// let a: NodeAddress = "casty://bank@127.0.0.1:25520".parse().unwrap();
/// assert_eq!((a.system(), a.host(), a.port()), ("bank", "127.0.0.1", 25520));
/// assert_eq!(a.to_string(), "casty://bank@127.0.0.1:25520");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeAddress {
    system: String,
    host: String,
    port: u16,
}

/// Why a string is not a node or actor address.
///
/// # Examples
///
/// ```
/// use casty::remote::NodeAddress;
/// let e = "http://bank@host:1".parse::<NodeAddress>().unwrap_err();
/// assert!(e.to_string().contains("casty://"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a casty address: {reason} (expected `casty://system@host:port[/path]`)")]
pub struct AddressError {
    input: String,
    reason: &'static str,
}

impl NodeAddress {
    /// An address from its parts.
    pub fn new(system: impl Into<String>, host: impl Into<String>, port: u16) -> Self {
        NodeAddress {
            system: system.into(),
            host: host.into(),
            port,
        }
    }

    /// The system name.
    pub fn system(&self) -> &str {
        &self.system
    }

    /// The host (a name or an IP address).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port`, for connecting.
    pub fn socket_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Splits `casty://system@host:port/path` into the node and the path (`/path`, or `/` when
    /// there is none).
    ///
    /// # Errors
    ///
    /// [`AddressError`] if `address` is not of that form.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::remote::NodeAddress;
    /// let (node, path) = NodeAddress::parse_actor("casty://bank@127.0.0.1:25520/user/accounts").unwrap();
    /// assert_eq!((node.port(), path), (25520, "/user/accounts"));
    /// ```
    pub fn parse_actor(address: &str) -> Result<(NodeAddress, &str), AddressError> {
        let err = |reason| AddressError {
            input: address.to_string(),
            reason,
        };
        let rest = address
            .strip_prefix("casty://")
            .ok_or_else(|| err("it must start with `casty://`"))?;
        Self::parse_rest(address, rest)
    }

    /// The node as the actor core names it in remote refs' paths: `system@host:port`.
    pub(crate) fn node_key(&self) -> String {
        format!("{}@{}", self.system, self.socket_addr())
    }

    /// The inverse of [`NodeAddress::node_key`].
    pub(crate) fn from_node_key(key: &str) -> Result<NodeAddress, AddressError> {
        match Self::parse_rest(key, key)? {
            (a, "/") => Ok(a),
            _ => Err(AddressError {
                input: key.to_string(),
                reason: "a node address has no path",
            }),
        }
    }

    /// Parses `system@host:port[/path]`; `input` is what errors quote.
    fn parse_rest<'a>(input: &str, rest: &'a str) -> Result<(NodeAddress, &'a str), AddressError> {
        let err = |reason| AddressError {
            input: input.to_string(),
            reason,
        };
        let (system, rest) = rest
            .split_once('@')
            .ok_or_else(|| err("the system name must be followed by `@`"))?;
        if system.is_empty() || system.contains('/') {
            return Err(err("the system name is empty or contains `/`"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| err("the host must be followed by `:port`"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(err("the host is empty"));
        }
        let port = port
            .parse::<u16>()
            .map_err(|_| err("the port is not a number from 0 to 65535"))?;
        Ok((NodeAddress::new(system, host, port), path))
    }
}

impl fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "casty://{}@{}", self.system, self.socket_addr())
    }
}

/// A node address travels as its text, `casty://system@host:port`.
impl serde::Serialize for NodeAddress {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for NodeAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for NodeAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match NodeAddress::parse_actor(s)? {
            (a, "/") => Ok(a),
            _ => Err(AddressError {
                input: s.to_string(),
                reason: "a node address has no path",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let (a, p) = NodeAddress::parse_actor("casty://sys@10.0.0.1:7/a/b").unwrap();
        assert_eq!(a, NodeAddress::new("sys", "10.0.0.1", 7));
        assert_eq!(p, "/a/b");
        let a: NodeAddress = "casty://s@[::1]:9".parse().unwrap();
        assert_eq!(a.host(), "::1");
        assert_eq!(a.to_string(), "casty://s@[::1]:9");
        assert_eq!(a.socket_addr(), "[::1]:9");
    }

    #[test]
    fn node_keys_round_trip() {
        let a = NodeAddress::new("sys", "10.0.0.1", 7);
        assert_eq!(a.node_key(), "sys@10.0.0.1:7");
        assert_eq!(NodeAddress::from_node_key(&a.node_key()), Ok(a));
        assert!(NodeAddress::from_node_key("sys@h:1/p").is_err());
    }

    #[test]
    fn refuses_bad_addresses() {
        for bad in [
            "casty://s/a",
            "casty://@h:1",
            "casty://s@h",
            "casty://s@h:x",
            "casty://s@:1",
            "casty://s@h:70000",
            "tcp://s@h:1",
            "casty://s@h:1/path",
        ] {
            assert!(bad.parse::<NodeAddress>().is_err(), "{bad}");
        }
    }
}
