//! Parsing `#[event_sourced]`: keys and the two handlers' signatures into a [`Model`]. Problems
//! with a signature's shape are recorded here, where its tokens are at hand.

use proc_macro2::TokenStream;
use syn::{FnArg, ImplItem, ImplItemFn, Item, ReturnType, Type};

use super::model::{Model, OnCommand, OnEvent};
use crate::common::errors::Errors;
use crate::common::item_head;
use crate::common::keys::{self, KeyKind};
use crate::common::types::{last_segment, single_arg};

const KEYS: &[(&str, KeyKind)] = &[
    ("snapshot_every", KeyKind::Int),
    ("keep_snapshots", KeyKind::Int),
    ("manifest", KeyKind::Str),
];

const ON_EVENT: &str = "`fn on_event(&self, event: &E) -> Self`";
const ON_COMMAND: &str =
    "`async fn on_command(&self, ctx: &mut ActorContext<C>, cmd: C) -> Behavior<C>`";

/// Parses the attribute and the impl block. Returns `None` when the item is not an impl block.
pub(crate) fn parse(args: TokenStream, input: TokenStream, errors: &mut Errors) -> Option<Model> {
    let given = keys::parse("event_sourced", args, KEYS, errors);
    let key = |k: &str| given.iter().find(|g| g.name == k);
    let item = match syn::parse2::<Item>(input) {
        Ok(Item::Impl(i)) => i,
        Ok(other) => {
            errors.at(
                item_head(&other),
                format!(
                    "`#[event_sourced]` goes on the impl block of the entity's state, with {ON_EVENT} and {ON_COMMAND}"
                ),
            );
            return None;
        }
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let mut on_event = None;
    let mut on_command = None;
    let mut has_initial = false;
    for it in &item.items {
        let ImplItem::Fn(f) = it else { continue };
        match f.sig.ident.to_string().as_str() {
            "on_event" => on_event = parse_on_event(f, &item.self_ty, errors),
            "on_command" => on_command = parse_on_command(f, errors),
            "initial" => has_initial = true,
            _ => {}
        }
    }
    Some(Model {
        on_event,
        on_command,
        has_initial,
        snapshot_every: key("snapshot_every").and_then(|g| g.int.clone()),
        keep_snapshots: key("keep_snapshots").and_then(|g| g.int.clone()),
        manifest: key("manifest").and_then(|g| g.value.clone()),
        item,
    })
}

/// Checks that the first parameter is `&self`. Returns false (with an error) otherwise.
fn self_ref(f: &ImplItemFn, role: &str, mut_hint: &str, errors: &mut Errors) -> bool {
    match f.sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => true,
        Some(FnArg::Receiver(r)) if r.mutability.is_some() && r.reference.is_some() => {
            errors.at(r, mut_hint);
            false
        }
        Some(FnArg::Receiver(r)) => {
            errors.at(
                r,
                format!("`{role}` borrows the state: take `&self`, not `self`"),
            );
            false
        }
        _ => {
            errors.at(
                &f.sig.ident,
                format!("`{role}` is a method of the state: its first parameter is `&self`"),
            );
            false
        }
    }
}

fn parse_on_event(f: &ImplItemFn, state: &Type, errors: &mut Errors) -> Option<OnEvent> {
    let mut ok = true;
    if let Some(a) = &f.sig.asyncness {
        errors.at(
            a,
            "`on_event` is pure and synchronous: remove `async`. It runs for every event, live and \
             during recovery; side effects belong in `on_command` (after a write, in `.then(..)`)",
        );
        ok = false;
    }
    ok &= self_ref(
        f,
        "on_event",
        "`on_event` must not change the state in place: take `&self` and return the new state \
         (`-> Self`). It is also used for replay, so it must be pure",
        errors,
    );
    let event = match f.sig.inputs.iter().nth(1) {
        Some(FnArg::Typed(p)) => match &*p.ty {
            Type::Reference(r) if r.mutability.is_none() => Some((*r.elem).clone()),
            Type::Reference(r) => {
                errors.at(
                    r,
                    "take the event as `&E`: an event is a fact and is never changed",
                );
                ok = false;
                Some((*r.elem).clone())
            }
            other => {
                errors.at(other, "take the event by reference: `event: &E`");
                ok = false;
                Some(other.clone())
            }
        },
        _ => {
            errors.at(
                &f.sig.inputs,
                format!("`on_event` takes the state and the event: {ON_EVENT}"),
            );
            None
        }
    };
    if let Some(extra) = f.sig.inputs.iter().nth(2) {
        errors.at(
            extra,
            format!("`on_event` takes only the event: {ON_EVENT}"),
        );
        ok = false;
    }
    match &f.sig.output {
        ReturnType::Type(_, t) if is_self(t, state) => {}
        ReturnType::Type(_, t) => {
            errors.at(t, "`on_event` returns the new state: write `-> Self`");
            ok = false;
        }
        ReturnType::Default => {
            errors.at(
                &f.sig.ident,
                "`on_event` returns the new state: add `-> Self`",
            );
            ok = false;
        }
    }
    event.map(|event| OnEvent { event, valid: ok })
}

/// `Self`, or the state's own name.
fn is_self(t: &Type, state: &Type) -> bool {
    let last = |t: &Type| last_segment(t).map(|(name, _)| name);
    matches!(t, Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self"))
        || (last(t).is_some() && last(t) == last(state))
}

fn parse_on_command(f: &ImplItemFn, errors: &mut Errors) -> Option<OnCommand> {
    let mut ok = self_ref(
        f,
        "on_command",
        "`on_command` reads the state: take `&self`. It changes the state only by persisting \
         events (`Behaviors::persisted(..)`)",
        errors,
    );
    let context = match f.sig.inputs.iter().nth(1) {
        Some(FnArg::Typed(p)) => match &*p.ty {
            Type::Reference(r)
                if r.mutability.is_some() && single_arg(&r.elem, "ActorContext").is_some() =>
            {
                Some((*r.elem).clone())
            }
            other => {
                errors.at(
                    other,
                    format!("the second parameter of `on_command` is the context: `ctx: &mut ActorContext<C>` ({ON_COMMAND})"),
                );
                None
            }
        },
        _ => {
            errors.at(
                &f.sig.inputs,
                format!("`on_command` takes the state, the context and the command: {ON_COMMAND}"),
            );
            None
        }
    };
    let command = match f.sig.inputs.iter().nth(2) {
        Some(FnArg::Typed(p)) => Some((*p.ty).clone()),
        _ => {
            if context.is_some() {
                errors.at(
                    &f.sig.inputs,
                    format!("missing the command parameter: {ON_COMMAND}"),
                );
            }
            None
        }
    };
    if let Some(extra) = f.sig.inputs.iter().nth(3) {
        errors.at(
            extra,
            format!("`on_command` takes only the context and the command: {ON_COMMAND}"),
        );
        ok = false;
    }
    let ret = match &f.sig.output {
        ReturnType::Type(_, t) => Some((**t).clone()),
        ReturnType::Default => {
            errors.at(
                &f.sig.ident,
                "`on_command` returns what to do: add `-> Behavior<C>` and return `Behaviors::persisted(..)`, `Behaviors::same()`, `Behaviors::unhandled()` or `Behaviors::stopped()`",
            );
            None
        }
    };
    match (context, command, ret) {
        (Some(context), Some(command), Some(ret)) if ok => Some(OnCommand {
            is_async: f.sig.asyncness.is_some(),
            ident: f.sig.ident.clone(),
            context,
            command,
            ret,
        }),
        _ => None,
    }
}
