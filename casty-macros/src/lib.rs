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
mod event_sourced;
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
/// whose handler owns the state between messages: it expands to `casty::Behaviors::stateful`
/// (or `stateful_async`). `#[behavior(setup)]` runs once per start, through `Behaviors::setup`.
#[proc_macro_attribute]
pub fn behavior(args: TokenStream, input: TokenStream) -> TokenStream {
    behavior::run(args.into(), input.into()).into()
}

/// On the impl block of an entity's state with `fn on_event(&self, &E) -> Self` and
/// `[async] fn on_command(&self, ctx, cmd: C) -> Behavior<C>`: implements
/// `EventSourcedCommand` for `C` and generates `State::behavior(entity_id, journal)` and
/// `State::entity(journal)`. Keys: `snapshot_every = N`, `keep_snapshots = K`, `manifest = "..."`.
#[proc_macro_attribute]
pub fn event_sourced(args: TokenStream, input: TokenStream) -> TokenStream {
    event_sourced::run(args.into(), input.into()).into()
}

#[cfg(test)]
mod tests {
    //! The guide shows what `#[behavior]` generates; this keeps that text true.

    use std::path::Path;

    fn check_snapshot(name: &str, actual: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../guide/src/generated")
            .join(name);
        if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            actual,
            expected,
            "{} is out of date; rerun with UPDATE_SNAPSHOTS=1 and read the diff",
            path.display()
        );
    }

    fn pretty(tokens: proc_macro2::TokenStream) -> String {
        prettyplease::unparse(&syn::parse2(tokens).expect("the expansion parses"))
    }

    #[test]
    fn behavior_expansion_matches_the_guide() {
        let out = crate::behavior::run(
            quote::quote!(),
            quote::quote! {
                fn bank_account(
                    _ctx: &mut ActorContext<AccountMsg>,
                    msg: AccountMsg,
                    mut balance: i64,
                ) -> Behavior<AccountMsg> {
                    match msg {
                        AccountMsg::Deposit(d) => balance += d.amount,
                        AccountMsg::GetBalance(g) => g.reply_to.tell(balance),
                    }
                    Behaviors::same()
                }
            },
        );
        check_snapshot("behavior_expansion.rs", &pretty(out));
    }

    #[test]
    fn message_enum_expansion_matches_the_guide() {
        let out = crate::message_enum::run(
            crate::message_enum::Target::Enum,
            quote::quote!(),
            quote::quote! {
                pub enum AccountMsg {
                    Deposit,
                    Withdraw { amount: i64, reply_to: ActorRef<String> },
                    GetBalance { reply_to: ActorRef<i64> },
                }
            },
        );
        check_snapshot("message_enum_expansion.rs", &pretty(out));
    }
}
