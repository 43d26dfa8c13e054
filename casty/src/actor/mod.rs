//! The actor core: behaviors, cells, refs, mailboxes, supervision, timers, the event stream and the
//! system. Nothing here knows about remoting, clustering or persistence; upper layers plug in
//! through small traits (see `actor_ref::RefTarget`).

pub(crate) mod actor_ref;
pub(crate) mod ask;
pub(crate) mod behavior;
pub(crate) mod cell;
pub(crate) mod context;
pub(crate) mod deadlines;
pub(crate) mod event_stream;
pub(crate) mod failure;
pub(crate) mod handler_box;
pub(crate) mod macro_support;
pub(crate) mod mailbox;
pub(crate) mod message;
pub(crate) mod mpsc;
pub(crate) mod otp;
pub(crate) mod park;
pub(crate) mod path;
pub(crate) mod registry;
pub(crate) mod reply_slot;
pub(crate) mod scheduler;
pub(crate) mod serde_refs;
pub(crate) mod stateful;
pub(crate) mod supervision;
pub(crate) mod system;
pub(crate) mod wire;
