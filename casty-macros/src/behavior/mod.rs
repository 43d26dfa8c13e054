//! `#[behavior]`: a fn of (context, message, state..) becomes a fn of its state that returns the
//! behavior. parse → model → validate → expand.

mod expand;
mod model;
mod parse;
mod validate;

use proc_macro2::TokenStream;

use crate::common::{emit, errors::Errors};

/// Expands `#[behavior]`.
pub(crate) fn run(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let Some(model) = parse::parse(args, input.clone(), &mut errors) else {
        let errs = errors.to_compile_errors();
        return quote::quote!(#input #errs);
    };
    validate::validate(&model, &mut errors);
    let name = model.func.sig.ident.to_string();
    emit("behavior", &name, expand::expand(&model, &errors))
}
