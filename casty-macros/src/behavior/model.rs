//! What `#[behavior]` knows about the fn, keeping the user's `syn` nodes for spans.

use syn::{Pat, PatIdent, Type};

/// The context parameter: `ctx: &mut ActorContext<M>`.
pub(crate) struct Context {
    pub(crate) pat: Box<Pat>,
    /// The `ActorContext<M>` behind the `&mut`.
    pub(crate) inner: Type,
}

/// The message parameter.
pub(crate) struct MessageParam {
    pub(crate) pat: Box<Pat>,
    pub(crate) ty: Box<Type>,
}

/// One state parameter (or setup argument): a plain name and its type.
pub(crate) struct State {
    pub(crate) attrs: Vec<syn::Attribute>,
    pub(crate) name: PatIdent,
    pub(crate) ty: Box<Type>,
}

/// The return type: `Behavior<M>` or `Result<Behavior<M>, E>`.
pub(crate) struct Return {
    pub(crate) ty: Box<Type>,
    pub(crate) message: Type,
}

/// The whole fn.
pub(crate) struct Model {
    pub(crate) func: syn::ItemFn,
    /// `#[behavior(setup)]`: runs once at start with the context and the arguments.
    pub(crate) setup: bool,
    pub(crate) context: Option<Context>,
    pub(crate) message: Option<MessageParam>,
    pub(crate) state: Vec<State>,
    pub(crate) ret: Option<Return>,
}

impl Model {
    pub(crate) fn is_async(&self) -> bool {
        self.func.sig.asyncness.is_some()
    }
}
