//! Parsing `#[behavior]`: keys and the fn signature into a [`Model`]. Problems with the shape of
//! the signature are recorded here, where the tokens are at hand.

use proc_macro2::TokenStream;
use syn::{FnArg, Item, Pat, ReturnType, Type};

use super::model::{Context, MessageParam, Model, Return, State};
use crate::common::errors::Errors;
use crate::common::item_head;
use crate::common::keys::{self, KeyKind};
use crate::common::types::{last_segment, show, single_arg};

const KEYS: &[(&str, KeyKind)] = &[("setup", KeyKind::Flag)];

/// Parses the attribute and the fn. Returns `None` when the item is not a fn.
pub(crate) fn parse(args: TokenStream, input: TokenStream, errors: &mut Errors) -> Option<Model> {
    let setup = keys::parse("behavior", args, KEYS, errors)
        .iter()
        .any(|k| k.name == "setup");
    let func = match syn::parse2::<Item>(input) {
        Ok(Item::Fn(f)) => f,
        Ok(other) => {
            errors.at(
                item_head(&other),
                "`#[behavior]` goes on a fn: `fn name(ctx: &mut ActorContext<M>, msg: M, state..) -> Behavior<M>`",
            );
            return None;
        }
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let mut params = func.sig.inputs.iter();
    let context = context(&func, params.next(), setup, errors);
    let message = if setup || context.is_none() {
        None
    } else {
        match params.next() {
            Some(FnArg::Typed(p)) => Some(MessageParam {
                pat: p.pat.clone(),
                ty: p.ty.clone(),
            }),
            Some(FnArg::Receiver(r)) => {
                errors.at(
                    r,
                    "a `#[behavior]` fn cannot take `self`; pass what it needs as state parameters",
                );
                None
            }
            None => {
                errors.at(
                    &func.sig.inputs,
                    "missing the message parameter: a `#[behavior]` fn takes the context, then the message (`msg: M`), then its state; for a fn that only runs at start, write `#[behavior(setup)]`",
                );
                None
            }
        }
    };
    let state = params.filter_map(|p| state(p, errors)).collect();
    let ret = ret(&func, errors);
    Some(Model {
        func,
        setup,
        context,
        message,
        state,
        ret,
    })
}

/// The first parameter must be `&mut ActorContext<M>`.
fn context(
    func: &syn::ItemFn,
    first: Option<&FnArg>,
    setup: bool,
    errors: &mut Errors,
) -> Option<Context> {
    let expected = if setup {
        "a `#[behavior(setup)]` fn takes the actor's context first: `fn name(ctx: &mut ActorContext<M>, args..) -> Behavior<M>`"
    } else {
        "a `#[behavior]` fn takes the actor's context and the message first: `fn name(ctx: &mut ActorContext<M>, msg: M, state..) -> Behavior<M>`"
    };
    let p = match first {
        None => {
            errors.at(
                &func.sig.ident,
                format!("missing the context and message parameters; {expected}"),
            );
            return None;
        }
        Some(FnArg::Receiver(r)) => {
            errors.at(
                r,
                format!("a `#[behavior]` fn cannot take `self`; {expected}"),
            );
            return None;
        }
        Some(FnArg::Typed(p)) => p,
    };
    let inner = match &*p.ty {
        Type::Reference(r) if r.mutability.is_some() => Some(&*r.elem),
        _ => None,
    };
    match inner.and_then(last_segment) {
        Some((name, _)) if name == "ActorContext" => Some(Context {
            pat: p.pat.clone(),
            inner: inner.cloned().expect("matched a reference"),
        }),
        _ => {
            let found = show(&p.ty);
            let hint = if inner.is_none() && found.contains("ActorContext") {
                "; the context is borrowed mutably: write `&mut ActorContext<M>`".to_string()
            } else if setup {
                String::new()
            } else {
                format!("; if `{found}` is the message, put `ctx: &mut ActorContext<M>` before it")
            };
            errors.at(
                &p.ty,
                format!("missing the context parameter: found `{found}` first; {expected}{hint}"),
            );
            None
        }
    }
}

/// A state parameter: `name: T` or `mut name: T`.
fn state(p: &FnArg, errors: &mut Errors) -> Option<State> {
    let p = match p {
        FnArg::Typed(p) => p,
        FnArg::Receiver(r) => {
            errors.at(r, "a `#[behavior]` fn cannot take `self`");
            return None;
        }
    };
    match &*p.pat {
        Pat::Ident(id) if id.by_ref.is_none() && id.subpat.is_none() => Some(State {
            attrs: p.attrs.clone(),
            name: id.clone(),
            ty: p.ty.clone(),
        }),
        other => {
            errors.at(
                other,
                "a state parameter must be a plain name (`count: u64` or `mut items: Vec<Item>`): it becomes a parameter of the generated fn; destructure it inside the body instead",
            );
            None
        }
    }
}

/// The return type: `Behavior<M>` or `Result<Behavior<M>, E>` (any `Result` alias whose first
/// argument is `Behavior<M>`).
fn ret(func: &syn::ItemFn, errors: &mut Errors) -> Option<Return> {
    let ty = match &func.sig.output {
        ReturnType::Type(_, ty) => ty,
        ReturnType::Default => {
            errors.at(
                &func.sig.ident,
                "a `#[behavior]` fn returns the actor's next behavior: add `-> Behavior<M>` (or `-> Result<Behavior<M>, E>`)",
            );
            return None;
        }
    };
    let message = single_arg(ty, "Behavior").cloned().or_else(|| {
        let (name, args) = last_segment(ty)?;
        (name == "Result")
            .then(|| {
                args.first()
                    .and_then(|b| single_arg(b, "Behavior"))
                    .cloned()
            })
            .flatten()
    });
    match message {
        Some(message) => Some(Return {
            ty: ty.clone(),
            message,
        }),
        None => {
            errors.at(
                ty,
                format!(
                    "a `#[behavior]` fn must return `Behavior<M>` or `Result<Behavior<M>, E>`, found `{}`",
                    show(ty)
                ),
            );
            None
        }
    }
}
