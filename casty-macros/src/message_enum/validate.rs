//! Checks on the model. Each records a spanned error saying what to write instead; all are run,
//! so every mistake is reported at once.

use syn::{GenericParam, TypeParamBound, WherePredicate};

use super::model::{Body, Model, Shape};
use crate::common::errors::Errors;
use crate::common::types::{find_borrow, owned_hint, show, single_arg, Borrow};

pub(crate) fn validate(model: &Model, errors: &mut Errors) {
    generics(model, errors);
    for field in model.fields() {
        owned_field(model, field, errors);
    }
    reply_fields(model, errors);
    if let Body::Enum { variants, .. } = &model.body {
        for v in variants {
            if let (Some(marker), false) = (&v.unit_marker, matches!(v.shape, Shape::Unit)) {
                errors.at(
                    marker,
                    format!(
                        "`#[unit]` marks a bare variant as a unit variant, but `{}` has fields; remove `#[unit]`",
                        v.ident
                    ),
                );
            }
        }
        if let Some(span) = model.options.terminated {
            if let Some(v) = variants.iter().find(|v| v.ident == "Terminated") {
                let mut e = syn::Error::new(
                    span,
                    "`terminated` adds a `Terminated` variant, but the enum already has one; remove `terminated` or the variant",
                );
                e.combine(syn::Error::new_spanned(&v.ident, "the existing variant"));
                errors.push(e);
            }
        }
    }
}

/// Lifetimes are refused; every type parameter needs a `Message` bound.
fn generics(model: &Model, errors: &mut Errors) {
    let g = model.generics();
    for param in &g.params {
        match param {
            GenericParam::Lifetime(l) => errors.at(
                &l.lifetime,
                format!(
                    "a message cannot borrow: `{}` would tie `{}` to a lifetime, but messages cross tasks and live in mailboxes; remove the lifetime and use owned types (`String`, `Vec<T>`, `Arc<T>`)",
                    l.lifetime,
                    model.ident()
                ),
            ),
            GenericParam::Type(t) => {
                let bounded = t.bounds.iter().any(is_message_bound)
                    || g.where_clause.iter().flat_map(|w| &w.predicates).any(|p| {
                        matches!(p, WherePredicate::Type(pt)
                            if matches!(&pt.bounded_ty, syn::Type::Path(tp) if tp.path.is_ident(&t.ident))
                                && pt.bounds.iter().any(is_message_bound))
                    });
                if !bounded {
                    errors.at(
                        &t.ident,
                        format!(
                            "generic message parameter `{0}` needs a `Message` bound (it must be `Debug + Send + 'static`{1}); write `{0}: casty::Message`",
                            t.ident,
                            if model.options.local.is_some() { "" } else { " and serializable" }
                        ),
                    );
                }
            }
            GenericParam::Const(_) => {}
        }
    }
}

fn is_message_bound(b: &TypeParamBound) -> bool {
    matches!(b, TypeParamBound::Trait(t) if t.path.segments.last().is_some_and(|s| s.ident == "Message"))
}

/// Message fields own their data.
fn owned_field(model: &Model, field: &syn::Field, errors: &mut Errors) {
    let name = field
        .ident
        .as_ref()
        .map(|i| format!("field `{i}`"))
        .unwrap_or_else(|| "this field".into());
    match find_borrow(&field.ty) {
        Some(Borrow::Reference(r)) => errors.at(
            r,
            format!(
                "message {name} borrows (`{}`), but a message must own its data: it crosses tasks and outlives the sender's stack; use an owned type such as `{}`",
                show(&field.ty),
                owned_hint(&r.elem)
            ),
        ),
        Some(Borrow::Lifetime(l)) => errors.at(
            l,
            format!(
                "message {name} has the lifetime `{l}` (`{}`), but a message must own its data; use an owned type (`String`, `Vec<T>`, `Arc<T>`)",
                show(&field.ty)
            ),
        ),
        Some(Borrow::StaticReference(r)) if model.options.local.is_none() => errors.at(
            r,
            format!(
                "message {name} is `{}`, which cannot be deserialized, so this message could not travel or be journaled; use `{}`, or mark a process-local protocol `#[{}(local)]`",
                show(&field.ty),
                owned_hint(&r.elem),
                match model.body { Body::Enum { .. } => "message_enum", Body::Struct { .. } => "message" }
            ),
        ),
        _ => {}
    }
}

/// A field called `reply_to` is where an ask's reply goes: it must be an `ActorRef<R>`.
fn reply_fields(model: &Model, errors: &mut Errors) {
    let fields: Vec<&syn::Field> = match &model.body {
        Body::Enum { variants, .. } => variants.iter().filter_map(|v| v.reply_to()).collect(),
        Body::Struct { item } => match &item.fields {
            syn::Fields::Named(n) => n
                .named
                .iter()
                .filter(|f| f.ident.as_ref().is_some_and(|i| i == "reply_to"))
                .collect(),
            _ => Vec::new(),
        },
    };
    for f in fields {
        if single_arg(&f.ty, "ActorRef").is_none() {
            errors.at(
                &f.ty,
                format!(
                    "`reply_to` must be an `ActorRef<R>`: an ask fills it with the asker's reply address, found `{}`; write `reply_to: ActorRef<R>` (R is the reply type), or rename the field if it is not a reply address",
                    show(&f.ty)
                ),
            );
        }
    }
}
