//! Code generation for `#[behavior]`.
//!
//! ```text
//! #[behavior] fn name(ctx, msg: M, mut count: u64) -> R { body }
//! ```
//! becomes a call of the public `Behaviors::stateful`, with the state parameters as its state:
//! ```text
//! fn name(count: u64) -> Behavior<M> {
//!     fn __casty_body(ctx, __casty_msg: M, (mut count,): (u64,)) -> Next<(u64,), M> {
//!         let msg: M = __casty_msg;             // through a check that names the user's type
//!         let __casty_out: R = (|| -> R { body })();
//!         Next::with((count,), __casty_out)     // the state goes back, changed in place or not
//!     }
//!     Behaviors::stateful::<M, _, _>((count,), __casty_body)
//! }
//! ```
//! The closure gives `return` and `?` in the body their usual meaning, and handing the state back
//! after it keeps the state across `Behaviors::same()` without cloning it. An `async fn` gets the
//! same shape with an `async` block, through `Behaviors::stateful_async`, and `#[behavior(setup)]`
//! becomes `Behaviors::setup` over a copy of the arguments. Only diagnostics (checks whose bounds
//! carry `on_unimplemented` messages) come from `::casty::__private`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericParam, Lifetime};

use super::model::Model;
use crate::common::errors::Errors;

/// Lint attributes are copied onto the inner body fn as well.
fn is_lint(attr: &syn::Attribute) -> bool {
    ["allow", "warn", "deny", "forbid", "expect"]
        .iter()
        .any(|l| attr.path().is_ident(l))
}

pub(crate) fn expand(model: &Model, errors: &Errors) -> TokenStream {
    let func = &model.func;
    let Some(ret) = &model.ret else {
        let errs = errors.to_compile_errors();
        return quote!(#func #errs);
    };
    let attrs = &func.attrs;
    let vis = &func.vis;
    let ident = &func.sig.ident;
    let generics = &func.sig.generics;
    let where_clause = &generics.where_clause;
    let m = &ret.message;
    let names: Vec<&syn::Ident> = model.state.iter().map(|s| &s.name.ident).collect();
    let tys: Vec<&syn::Type> = model.state.iter().map(|s| &*s.ty).collect();
    let param_attrs: Vec<&Vec<syn::Attribute>> = model.state.iter().map(|s| &s.attrs).collect();
    let outer_ret = quote_spanned!(ret.ty.span()=> ::casty::Behavior<#m>);
    let signature = quote! {
        #(#attrs)*
        #vis fn #ident #generics (#( #(#param_attrs)* #names: #tys ),*) -> #outer_ret #where_clause
    };

    let (Some(ctx), false) = (&model.context, !errors.is_empty()) else {
        // Keep the generated signature so callers type-check; report the errors.
        let errs = errors.to_compile_errors();
        return quote! {
            #signature {
                let _ = (#(#names,)*);
                ::core::unreachable!()
            }
            #errs
        };
    };

    let lints: Vec<&syn::Attribute> = attrs.iter().filter(|a| is_lint(a)).collect();
    let ctx_pat = &ctx.pat;
    let ret_ty = &ret.ty;
    let block = &func.block;
    let pats: Vec<&syn::PatIdent> = model.state.iter().map(|s| &s.name).collect();
    let turbofish = turbofish(generics);
    let inner_params = &generics.params;

    let state_checks = model.state.iter().map(|s| {
        let ty = &s.ty;
        quote_spanned!(ty.span()=> ::casty::__private::assert_state::<#ty>();)
    });
    let inner_ctx = &ctx.inner;
    let context_check = quote_spanned! {inner_ctx.span()=>
        ::casty::__private::assert_context::<#inner_ctx, #m>();
    };

    // The message arrives as `M` and is bound to the user's pattern and type through an identity
    // whose bound names the mismatch, at the user's type.
    let bind_message = model.message.as_ref().map(|msg| {
        let msg_pat = &msg.pat;
        let msg_ty = &msg.ty;
        let from = quote_spanned! {msg_ty.span()=>
            <#msg_ty as ::casty::__private::SameMessage<#m>>::from_message(__casty_msg)
        };
        quote!(let #msg_pat: #msg_ty = #from;)
    });
    let state_ty = quote!((#(#tys,)*));
    let next = quote_spanned! {ret_ty.span()=>
        ::casty::Next::with((#(#names,)*), __casty_out)
    };

    let body = if model.setup {
        let call = quote_spanned! {ret_ty.span()=>
            ::casty::Behaviors::setup(move |__casty_ctx: &mut ::casty::ActorContext<#m>| {
                // Copied into a binding first, so that the lock is released before the body runs.
                #[allow(clippy::let_unit_value)]
                let __casty_args = ::core::clone::Clone::clone(
                    &*__casty_args
                        .lock()
                        .unwrap_or_else(::std::sync::PoisonError::into_inner),
                );
                __casty_body #turbofish (__casty_ctx, __casty_args)
            })
        };
        quote! {
            #(#lints)*
            fn __casty_body <#inner_params> (
                #ctx_pat: &mut ::casty::ActorContext<#m>,
                (#(#pats,)*): #state_ty,
            ) -> #ret_ty #where_clause #block
            // A `Mutex` makes the arguments `Sync` for the setup closure; each start copies them.
            let __casty_args = ::std::sync::Mutex::new((#(#names,)*));
            #call
        }
    } else {
        let msg_ty = &model
            .message
            .as_ref()
            .expect("a message parameter after a context")
            .ty;
        if model.is_async() {
            let lt = Lifetime::new("'__casty", Span::call_site());
            let call = quote_spanned! {msg_ty.span()=>
                ::casty::Behaviors::stateful_async::<#m, _, _>((#(#names,)*), __casty_body #turbofish)
            };
            quote! {
                #(#lints)*
                #[allow(clippy::needless_lifetimes)]
                fn __casty_body <#lt, #inner_params> (
                    #ctx_pat: &#lt mut ::casty::ActorContext<#m>,
                    __casty_msg: #m,
                    (#(#pats,)*): #state_ty,
                ) -> ::casty::future::BoxFuture<#lt, ::casty::Next<#state_ty, #m>>
                #where_clause
                {
                    #bind_message
                    ::std::boxed::Box::pin(async move {
                        let __casty_out: #ret_ty = async #block.await;
                        #next
                    })
                }
                #call
            }
        } else {
            let call = quote_spanned! {msg_ty.span()=>
                ::casty::Behaviors::stateful::<#m, _, _>((#(#names,)*), __casty_body #turbofish)
            };
            quote! {
                #(#lints)*
                #[allow(clippy::redundant_closure_call)]
                #[inline(always)]
                fn __casty_body <#inner_params> (
                    #ctx_pat: &mut ::casty::ActorContext<#m>,
                    __casty_msg: #m,
                    (#(#pats,)*): #state_ty,
                ) -> ::casty::Next<#state_ty, #m> #where_clause {
                    #bind_message
                    let __casty_out: #ret_ty = (|| -> #ret_ty #block)();
                    #next
                }
                #call
            }
        }
    };
    quote! {
        #signature {
            #(#state_checks)*
            #context_check
            #body
        }
    }
}

/// `::<T, N>` for the fn's type and const parameters (lifetimes are late-bound and left out).
fn turbofish(generics: &syn::Generics) -> TokenStream {
    let args: Vec<&syn::Ident> = generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(&t.ident),
            GenericParam::Const(c) => Some(&c.ident),
            GenericParam::Lifetime(_) => None,
        })
        .collect();
    if args.is_empty() {
        TokenStream::new()
    } else {
        quote!(::<#(#args),*>)
    }
}
