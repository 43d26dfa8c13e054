//! What `#[event_sourced]` read from the impl block. The original `syn` nodes are kept so that
//! errors and assertions point at the user's tokens.

use syn::{ItemImpl, LitInt, LitStr, Type};

/// `fn on_event(&self, event: &E) -> Self`.
pub(crate) struct OnEvent {
    /// `E` (from `&E`, or from `E` written by value, which is an error).
    pub(crate) event: Type,
    /// Whether the signature is right; if not, only the command impl is generated, so that the
    /// rest of the user's code still type-checks.
    pub(crate) valid: bool,
}

/// `[async] fn on_command(&self, ctx: &mut ActorContext<X>, cmd: C) -> R`.
pub(crate) struct OnCommand {
    pub(crate) is_async: bool,
    pub(crate) ident: syn::Ident,
    /// `ActorContext<X>` as written.
    pub(crate) context: Type,
    /// `C`.
    pub(crate) command: Type,
    /// `R` as written.
    pub(crate) ret: Type,
}

/// The parsed impl block.
pub(crate) struct Model {
    pub(crate) item: ItemImpl,
    pub(crate) on_event: Option<OnEvent>,
    pub(crate) on_command: Option<OnCommand>,
    /// Whether the block has `fn initial() -> Self`.
    pub(crate) has_initial: bool,
    pub(crate) snapshot_every: Option<LitInt>,
    pub(crate) keep_snapshots: Option<LitInt>,
    pub(crate) manifest: Option<LitStr>,
}
