//! Actor paths: the name of one actor incarnation.
//!
//! A path is the chain of names from the root (`/team/worker-2`) plus a unique incarnation id
//! (`uid`). Two incarnations under the same name have equal `path_str`s but different uids, so a ref
//! to an old incarnation never reaches a new one (the same rule remoting applies to nodes, R1).
//! Paths are cheap to clone (one `Arc`).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use triomphe::ThinArc;

/// Incarnation uids start at a random point in each process, as Akka's do, so that an actor in a
/// restarted process never reuses the uid of its predecessor under the same path (R1). 0 is never
/// used: on the wire it means "whichever actor is at the path".
static NEXT_UID: std::sync::LazyLock<AtomicU64> =
    std::sync::LazyLock::new(|| AtomicU64::new(fastrand::u64(1..1 << 62)));

pub(crate) fn next_uid() -> u64 {
    NEXT_UID.fetch_add(1, Ordering::Relaxed)
}

/// What a path holds besides its text.
#[derive(Hash)]
struct PathHead {
    system: Arc<str>,
    uid: u64,
}

/// The location and incarnation of an actor: `/team/worker-2` plus a unique id.
///
/// `Display` prints the path (`/team/worker-2`); [`ActorPath::address`] prints the full address
/// with the system name (`casty://sys/team/worker-2`).
///
/// A path is one pointer to one allocation holding the system's name, the uid and the path's
/// text: every live actor has one.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::{ActorSystem, Behaviors};
/// let system = ActorSystem::new("demo");
/// let r = system.spawn(Behaviors::ignore::<String>(), "greeter").unwrap();
/// assert_eq!(r.path().to_string(), "/greeter");
/// assert_eq!(r.path().name(), "greeter");
/// assert_eq!(r.path().address(), "casty://demo/greeter");
/// # system.shutdown().await; }
/// ```
#[derive(Clone)]
pub struct ActorPath(ThinArc<PathHead, u8>);

impl PartialEq for ActorPath {
    fn eq(&self, other: &Self) -> bool {
        // The same allocation, or else the cheapest difference first: the incarnation.
        self.0.ptr() == other.0.ptr()
            || (self.uid() == other.uid()
                && self.as_str() == other.as_str()
                && self.head().system == other.head().system)
    }
}

impl Eq for ActorPath {}

impl Hash for ActorPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.head().hash(state);
        self.as_str().hash(state);
    }
}

impl ActorPath {
    pub(crate) fn new(system: Arc<str>, path: String, uid: u64) -> Self {
        Self::from_bytes(system, path.as_bytes(), uid)
    }

    /// `path` is the UTF-8 of the path's text.
    fn from_bytes(system: Arc<str>, path: &[u8], uid: u64) -> Self {
        ActorPath(ThinArc::from_header_and_slice(
            PathHead { system, uid },
            path,
        ))
    }

    fn head(&self) -> &PathHead {
        &self.0.header.header
    }

    pub(crate) fn child(&self, name: &str, uid: u64) -> Self {
        let base = match self.as_str() {
            "/" => "",
            p => p,
        };
        let system = self.head().system.clone();
        let len = base.len() + 1 + name.len();
        // Most paths are short: they are joined on the stack, not in a string allocated only to
        // be copied into the path's own allocation.
        let mut short = [0u8; 64];
        match short.get_mut(..len) {
            Some(joined) => {
                let (b, rest) = joined.split_at_mut(base.len());
                b.copy_from_slice(base.as_bytes());
                rest[0] = b'/';
                rest[1..].copy_from_slice(name.as_bytes());
                Self::from_bytes(system, joined, uid)
            }
            None => Self::from_bytes(system, format!("{base}/{name}").as_bytes(), uid),
        }
    }

    /// The path as a string, e.g. `/team/worker-2`.
    pub fn as_str(&self) -> &str {
        // The bytes were copied from a `&str` and are never written again, so this cannot fail.
        std::str::from_utf8(&self.0.slice).unwrap_or_default()
    }

    /// The last element of the path: the actor's name.
    pub fn name(&self) -> &str {
        self.as_str().rsplit('/').next().unwrap_or("")
    }

    /// The path of the parent (`/team` for `/team/worker-2`), or `None` for the root.
    pub fn parent_str(&self) -> Option<&str> {
        let p = self.as_str();
        if p == "/" {
            return None;
        }
        match p.rfind('/') {
            Some(0) => Some("/"),
            Some(i) => Some(&p[..i]),
            None => None,
        }
    }

    /// The unique id of this incarnation.
    pub fn uid(&self) -> u64 {
        self.head().uid
    }

    /// The name of the actor system this actor lives in.
    pub fn system_name(&self) -> &str {
        &self.head().system
    }

    /// The full address: `casty://system/path`.
    pub fn address(&self) -> String {
        format!("casty://{}{}", self.head().system, self.as_str())
    }
}

impl fmt::Display for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.as_str(), self.uid())
    }
}

/// Checks a user-given actor name. Names are non-empty, contain no `/`, `#` or whitespace, and do
/// not start with `_` or `$`, which are reserved for internal and anonymous actors.
pub(crate) fn validate_name(name: &str, internal: bool) -> Result<(), String> {
    if name.is_empty() {
        return Err("an actor name must not be empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == '#' || c.is_whitespace() || c.is_control())
    {
        return Err(format!("an actor name must not contain {c:?}"));
    }
    if !internal && (name.starts_with('_') || name.starts_with('$')) {
        return Err(
            "names starting with `_` or `$` are reserved for internal and anonymous actors".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_paths_and_names() {
        let root = ActorPath::new("s".into(), "/".into(), 0);
        let team = root.child("team", 1);
        let w = team.child("worker-2", 2);
        assert_eq!(team.as_str(), "/team");
        assert_eq!(w.as_str(), "/team/worker-2");
        assert_eq!(w.name(), "worker-2");
        assert_eq!(w.parent_str(), Some("/team"));
        assert_eq!(team.parent_str(), Some("/"));
        assert_eq!(w.address(), "casty://s/team/worker-2");
    }

    // A child's path is the same whether it is joined on the stack (short) or not (long).
    #[test]
    fn long_child_paths_are_joined_like_short_ones() {
        let root = ActorPath::new("s".into(), "/".into(), 0);
        let long = "n".repeat(100);
        let parent = root.child(&long, 1);
        let child = parent.child("c", 2);
        assert_eq!(parent.as_str(), format!("/{long}"));
        assert_eq!(child.as_str(), format!("/{long}/c"));
        assert_eq!(child.name(), "c");
        assert_eq!(child.parent_str(), Some(parent.as_str()));
        let edge = root.child(&"e".repeat(63), 3);
        assert_eq!(edge.as_str().len(), 64);
        assert_eq!(edge.name(), "e".repeat(63));
    }

    #[test]
    fn incarnations_differ() {
        let a = ActorPath::new("s".into(), "/a".into(), 1);
        let b = ActorPath::new("s".into(), "/a".into(), 2);
        assert_ne!(a, b);
        assert_eq!(a.as_str(), b.as_str());
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("worker-1", false).is_ok());
        assert!(validate_name("", false).is_err());
        assert!(validate_name("a/b", false).is_err());
        assert!(validate_name("a b", false).is_err());
        assert!(validate_name("_internal", false).is_err());
        assert!(validate_name("_internal", true).is_ok());
        assert!(validate_name("$anon", false).is_err());
    }
}
