//! Procedural macros for casty. Use them through `casty` (`casty::message_enum`,
//! `casty::behavior`, `casty::message`); the generated code names only `::casty` paths, so a user
//! never adds `serde` or this crate themselves.
//!
//! Each macro works in stages, parse → model → validate → expand, in its own folder. Every error
//! is spanned at the user's tokens and says what to write instead; all errors are reported at
//! once, and the item is still emitted so that one mistake does not cascade.
//!
//! Set `CASTY_MACROS_DEBUG=1` while building to print every expansion to stderr.

mod behavior;
mod common;
mod message_enum;

use proc_macro::TokenStream;

use message_enum::Target;

/// Makes an enum an actor protocol: `Message` with a stable manifest, serde (unless `local`),
/// `From` for newtype variants, shorthand variants, an optional `Terminated` variant, and typed
/// ask constructors. See the `casty` crate docs for the full rules.
#[proc_macro_attribute]
pub fn message_enum(args: TokenStream, input: TokenStream) -> TokenStream {
    message_enum::run(Target::Enum, args.into(), input.into()).into()
}

/// Makes a struct a message: `Message` with a stable manifest, `Debug` and serde (unless
/// `local`).
#[proc_macro_attribute]
pub fn message(args: TokenStream, input: TokenStream) -> TokenStream {
    message_enum::run(Target::Struct, args.into(), input.into()).into()
}

/// Turns `fn name(ctx, msg, state..) -> Behavior<M>` into `fn name(state..) -> Behavior<M>`,
/// whose handler owns the state between messages. `#[behavior(setup)]` runs once per start.
#[proc_macro_attribute]
pub fn behavior(args: TokenStream, input: TokenStream) -> TokenStream {
    behavior::run(args.into(), input.into()).into()
}
