//! Checks across the whole impl block, after parsing. Type-level checks (serde, command types) are
//! left to assertions the expansion places at the user's tokens.

use super::model::Model;
use crate::common::errors::Errors;

pub(crate) fn validate(model: &Model, errors: &mut Errors) {
    let item = &model.item;
    if let Some((_, path, _)) = &item.trait_ {
        errors.at(
            path,
            "`#[event_sourced]` goes on an inherent impl of the state (`impl State { .. }`), not on a trait impl",
        );
    }
    if !item.generics.params.is_empty() {
        errors.at(
            &item.generics,
            "`#[event_sourced]` does not support generic states; use a concrete type",
        );
    }
    let has = |name: &str| {
        item.items
            .iter()
            .any(|i| matches!(i, syn::ImplItem::Fn(f) if f.sig.ident == name))
    };
    if !has("on_event") {
        errors.at(
            item.impl_token,
            "missing `fn on_event(&self, event: &E) -> Self`: it applies one event to the state",
        );
    }
    if !has("on_command") {
        errors.at(
            item.impl_token,
            "missing `async fn on_command(&self, ctx: &mut ActorContext<C>, cmd: C) -> Behavior<C>`: it decides what to persist",
        );
    }
    if let (Some(k), None) = (&model.keep_snapshots, &model.snapshot_every) {
        errors.at(
            k,
            "`keep_snapshots` needs `snapshot_every = N` to take snapshots at all",
        );
    }
    for lit in [&model.snapshot_every, &model.keep_snapshots]
        .into_iter()
        .flatten()
    {
        if lit.base10_parse::<u64>().is_err() {
            errors.at(lit, "expected a whole number of events");
        }
    }
}
