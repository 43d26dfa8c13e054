//! Checks that need the whole model. Type-level checks (state is `Send + Clone + 'static`, the
//! message parameter is the behavior's `M`) are emitted as bounds at the user's tokens instead,
//! since only the compiler can decide them.

use syn::GenericParam;

use super::model::Model;
use crate::common::errors::Errors;
use crate::common::types::{find_borrow, owned_hint, show, Borrow};

pub(crate) fn validate(model: &Model, errors: &mut Errors) {
    let sig = &model.func.sig;
    if let (true, Some(a)) = (model.setup, &sig.asyncness) {
        errors.at(
            a,
            "`#[behavior(setup)]` runs synchronously when the actor starts, so it cannot be `async`; remove `async`, and start async work from the setup with `ctx.pipe_to_self(..)`",
        );
    }
    if let Some(c) = &sig.constness {
        errors.at(c, "a `#[behavior]` fn cannot be `const`; remove `const`");
    }
    if let Some(v) = &sig.variadic {
        errors.at(v, "a `#[behavior]` fn cannot be variadic");
    }
    for p in &sig.generics.params {
        if let GenericParam::Lifetime(l) = p {
            errors.at(
                &l.lifetime,
                "a behavior cannot borrow: the actor outlives the caller, so its state must be owned; remove the lifetime parameter",
            );
        }
    }
    let what = if model.setup {
        "argument"
    } else {
        "state parameter"
    };
    for s in &model.state {
        let name = &s.name.ident;
        match find_borrow(&s.ty) {
            Some(Borrow::Reference(r)) => errors.at(
                r,
                format!(
                    "{what} `{name}` borrows (`{}`), but behavior state must be owned and `'static`: the actor keeps it across messages and restarts; use an owned type such as `{}`",
                    show(&s.ty),
                    owned_hint(&r.elem)
                ),
            ),
            Some(Borrow::Lifetime(l)) => errors.at(
                l,
                format!(
                    "{what} `{name}` has the lifetime `{l}`, but behavior state must be owned and `'static`; use an owned type"
                ),
            ),
            // `&'static T` is owned for as long as the actor lives.
            Some(Borrow::StaticReference(_)) | None => {}
        }
    }
}
