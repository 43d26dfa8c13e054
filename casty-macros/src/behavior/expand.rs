//! Code generation for `#[behavior]`.
//!
//! ```text
//! #[behavior] fn name(ctx, msg: M, mut count: u64) -> R { body }
//! ```
//! becomes
//! ```text
//! fn name(count: u64) -> Behavior<M> {
//!     fn __casty_body(ctx, msg: M, (mut count,): (u64,), __casty_slot: &mut Option<(u64,)>) -> R {
//!         let __casty_out: R = (|| -> R { body })();
//!         *__casty_slot = Some((count,));   // the state goes back, changed in place or not
//!         __casty_out
//!     }
//!     casty::__private::stateful::<M, M, _, _, _>((count,), __casty_body)
//! }
//! ```
//! The closure gives `return` and `?` in the body their usual meaning, and the restore after it
//! keeps the state across `Behaviors::same()` without cloning it. An `async fn` gets the same
//! shape with an `async` block and one boxed future per message.

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

    let body = if model.setup {
        let call = quote_spanned! {ret_ty.span()=>
            ::casty::__private::setup::<#m, _, _, _>((#(#names,)*), __casty_body #turbofish)
        };
        quote! {
            #(#lints)*
            fn __casty_body <#inner_params> (
                #ctx_pat: &mut ::casty::ActorContext<#m>,
                (#(#pats,)*): (#(#tys,)*),
            ) -> #ret_ty #where_clause #block
            #call
        }
    } else {
        let msg = model
            .message
            .as_ref()
            .expect("a message parameter after a context");
        let msg_pat = &msg.pat;
        let msg_ty = &msg.ty;
        if model.is_async() {
            let lt = Lifetime::new("'__casty", Span::call_site());
            let call = quote_spanned! {msg_ty.span()=>
                ::casty::__private::stateful_async::<#m, #msg_ty, _, _>((#(#names,)*), __casty_body #turbofish)
            };
            quote! {
                #(#lints)*
                #[allow(clippy::needless_lifetimes)]
                fn __casty_body <#lt, #inner_params> (
                    #ctx_pat: &#lt mut ::casty::ActorContext<#m>,
                    #msg_pat: #msg_ty,
                    (#(#pats,)*): (#(#tys,)*),
                    __casty_slot: &#lt mut ::core::option::Option<(#(#tys,)*)>,
                ) -> ::casty::future::BoxFuture<#lt, ::core::result::Result<::casty::Behavior<#m>, ::casty::Failure>>
                #where_clause
                {
                    ::std::boxed::Box::pin(async move {
                        let __casty_out: #ret_ty = async #block.await;
                        *__casty_slot = ::core::option::Option::Some((#(#names,)*));
                        ::casty::__private::into_result::<#m, _>(__casty_out)
                    })
                }
                #call
            }
        } else {
            let call = quote_spanned! {msg_ty.span()=>
                ::casty::__private::stateful::<#m, #msg_ty, _, _, _>((#(#names,)*), __casty_body #turbofish)
            };
            quote! {
                #(#lints)*
                #[allow(clippy::redundant_closure_call)]
                #[inline(always)]
                fn __casty_body <#inner_params> (
                    #ctx_pat: &mut ::casty::ActorContext<#m>,
                    #msg_pat: #msg_ty,
                    (#(#pats,)*): (#(#tys,)*),
                    __casty_slot: &mut ::core::option::Option<(#(#tys,)*)>,
                ) -> #ret_ty #where_clause {
                    let __casty_out: #ret_ty = (|| -> #ret_ty #block)();
                    *__casty_slot = ::core::option::Option::Some((#(#names,)*));
                    __casty_out
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
