//! `#[message_enum]` (protocol enums) and `#[message]` (message structs): parse → model →
//! validate → expand.

mod expand;
mod model;
mod parse;
mod validate;

pub(crate) use parse::Target;

use proc_macro2::TokenStream;

use crate::common::{emit, errors::Errors};

/// Expands either attribute.
pub(crate) fn run(target: Target, args: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let Some(model) = parse::parse(target, args, input.clone(), &mut errors) else {
        let errs = errors.to_compile_errors();
        return quote::quote!(#input #errs);
    };
    validate::validate(&model, &mut errors);
    let name = model.ident().to_string();
    emit(target.name(), &name, expand::expand(&model, &errors))
}
