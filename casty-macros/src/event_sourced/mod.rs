//! `#[event_sourced]`: the impl block of an entity's state, with `on_event` and `on_command`,
//! becomes an event-sourced entity. parse → model → validate → expand.

mod expand;
mod model;
mod parse;
mod validate;

use proc_macro2::TokenStream;

use crate::common::{emit, errors::Errors};

/// Expands `#[event_sourced]`.
pub(crate) fn run(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let Some(model) = parse::parse(args, input.clone(), &mut errors) else {
        let errs = errors.to_compile_errors();
        return quote::quote!(#input #errs);
    };
    validate::validate(&model, &mut errors);
    let name = crate::common::types::show(&model.item.self_ty);
    emit("event_sourced", &name, expand::expand(&model, &errors))
}
