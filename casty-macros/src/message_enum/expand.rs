//! Code generation for `#[message_enum]` and `#[message]`.

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};

use super::model::{Body, Model, Shape};
use crate::common::errors::Errors;
use crate::common::snake_case;
use crate::common::types::{last_segment, single_arg};

/// The whole expansion. With errors, the item is still emitted (cleaned up, without serde and the
/// `Message` impl) together with the errors, so that one mistake does not cascade.
pub(crate) fn expand(model: &Model, errors: &Errors) -> TokenStream {
    let ok = errors.is_empty();
    let item = item(model, ok);
    let from = from_impls(model);
    let rest = if ok {
        let message = message_impl(model);
        let ask = ask_constructors(model);
        quote!(#message #ask)
    } else {
        TokenStream::new()
    };
    let errs = errors.to_compile_errors();
    quote!(#item #from #rest #errs)
}

/// Whether the user already derives `Debug`.
fn derives_debug(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("derive"))
        .any(|a| {
            a.parse_args_with(
                syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
            )
            .is_ok_and(|paths| {
                paths
                    .iter()
                    .any(|p| p.segments.last().is_some_and(|s| s.ident == "Debug"))
            })
        })
}

/// The item with the derives added and, for an enum, shorthands expanded and `Terminated` added.
fn item(model: &Model, ok: bool) -> TokenStream {
    let serde = model.options.local.is_none() && ok;
    let debug = (!derives_debug(model.attrs())).then(|| quote!(#[derive(::core::fmt::Debug)]));
    let serde_attrs = serde.then(|| {
        quote! {
            #[derive(::casty::__private::serde::Serialize, ::casty::__private::serde::Deserialize)]
            #[serde(crate = "::casty::__private::serde")]
        }
    });
    match &model.body {
        Body::Struct { item } => {
            let mut item = item.clone();
            if !ok {
                item.fields.iter_mut().for_each(unborrow);
            }
            quote!(#debug #serde_attrs #item)
        }
        Body::Enum { item, variants } => {
            let mut e = item.clone();
            e.variants = variants
                .iter()
                .map(|v| {
                    let mut emitted = v.emitted.clone();
                    let is_terminated = v
                        .payload()
                        .and_then(last_segment)
                        .is_some_and(|(n, _)| n == "Terminated");
                    if !ok {
                        emitted.fields.iter_mut().for_each(unborrow);
                    }
                    if serde && is_terminated {
                        emitted.attrs.push(syn::parse_quote!(#[serde(skip)]));
                    }
                    emitted
                })
                .collect();
            if let Some(span) = model.options.terminated {
                let skip = serde.then(|| quote!(#[serde(skip)]));
                e.variants.push(syn::parse_quote_spanned! {span=>
                    /// A watched actor terminated (added by `#[message_enum(terminated)]`).
                    #skip
                    Terminated(::casty::Terminated)
                });
            }
            quote!(#debug #serde_attrs #e)
        }
    }
}

/// After an error, a field that borrows without a lifetime is emitted as `()`, so the compiler
/// does not add a "missing lifetime" error to ours.
fn unborrow(field: &mut syn::Field) {
    if let syn::Type::Reference(r) = &field.ty {
        if r.lifetime.is_none() {
            field.ty = syn::parse_quote!(());
        }
    }
}

/// `impl Message`, with a stable manifest.
fn message_impl(model: &Model) -> TokenStream {
    let ident = model.ident();
    let (impl_g, ty_g, where_c) = model.generics().split_for_impl();
    let type_params: Vec<&syn::Ident> = model.generics().type_params().map(|t| &t.ident).collect();
    let base = match &model.options.manifest {
        Some(lit) => quote!(#lit),
        None => quote!(::core::concat!(
            ::core::module_path!(),
            "::",
            ::core::stringify!(#ident)
        )),
    };
    let manifest = if type_params.is_empty() {
        quote!(::std::borrow::Cow::Borrowed(#base))
    } else {
        quote! {
            {
                let __casty_params: ::std::vec::Vec<::std::string::String> = ::std::vec![
                    #( <#type_params as ::casty::Message>::manifest().into_owned() ),*
                ];
                ::std::borrow::Cow::Owned(::std::format!("{}<{}>", #base, __casty_params.join(",")))
            }
        }
    };
    // A serializable protocol can be read from the wire; a `local` one cannot. A generic one
    // would need serde bounds on its parameters that `Message` does not have, so it stays
    // local-only over the wire.
    let decoder = (model.options.local.is_none() && type_params.is_empty()).then(|| {
        quote! {
            fn wire_decoder() -> ::std::option::Option<::casty::wire::WireDecoder<Self>> {
                ::std::option::Option::Some(::casty::wire::cbor_decoder::<Self>)
            }
        }
    });
    quote! {
        #[automatically_derived]
        impl #impl_g ::casty::Message for #ident #ty_g #where_c {
            fn manifest() -> ::std::borrow::Cow<'static, str> {
                #manifest
            }
            #decoder
        }
    }
}

/// `From<Payload>` for every newtype variant whose payload type no other variant shares.
fn from_impls(model: &Model) -> TokenStream {
    let Body::Enum { item, variants } = &model.body else {
        return TokenStream::new();
    };
    let ident = &item.ident;
    let (impl_g, ty_g, where_c) = item.generics.split_for_impl();
    let mut count: HashMap<String, usize> = HashMap::new();
    let payloads: Vec<(&syn::Ident, &syn::Type)> = variants
        .iter()
        .filter_map(|v| v.payload().map(|t| (&v.ident, t)))
        .collect();
    for (_, t) in &payloads {
        *count.entry(t.to_token_stream().to_string()).or_default() += 1;
    }
    let params: Vec<String> = item
        .generics
        .type_params()
        .map(|t| t.ident.to_string())
        .collect();
    let mut out = TokenStream::new();
    for (variant, ty) in payloads {
        let key = ty.to_token_stream().to_string();
        // A bare type parameter would conflict with `impl<T> From<T> for T`.
        if count[&key] > 1 || params.contains(&key) {
            continue;
        }
        out.extend(quote_spanned! {variant.span()=>
            #[automatically_derived]
            impl #impl_g ::core::convert::From<#ty> for #ident #ty_g #where_c {
                #[inline]
                fn from(m: #ty) -> Self {
                    #ident::#variant(m)
                }
            }
        });
    }
    if model.options.terminated.is_some() && !count.contains_key("Terminated") {
        out.extend(quote! {
            #[automatically_derived]
            impl #impl_g ::core::convert::From<::casty::Terminated> for #ident #ty_g #where_c {
                #[inline]
                fn from(t: ::casty::Terminated) -> Self {
                    #ident::Terminated(t)
                }
            }
        });
    }
    out
}

/// For each struct-like variant with a `reply_to: ActorRef<R>` field, a constructor an ask can
/// call: `get_balance(reply_to)` when there is no other field, else `withdraw(amount)` returning
/// `impl FnOnce(ActorRef<R>) -> Self`.
fn ask_constructors(model: &Model) -> TokenStream {
    let Body::Enum { item, variants } = &model.body else {
        return TokenStream::new();
    };
    let ident = &item.ident;
    let vis = &item.vis;
    let (impl_g, ty_g, where_c) = item.generics.split_for_impl();
    let mut fns = TokenStream::new();
    for v in variants {
        let (Some(reply), Shape::Named(fields)) = (v.reply_to(), &v.shape) else {
            continue;
        };
        if single_arg(&reply.ty, "ActorRef").is_none() {
            continue;
        }
        let reply_ty = &reply.ty;
        let variant = &v.ident;
        let name = format_ident!(
            "{}",
            snake_case(&variant.to_string()),
            span = variant.span()
        );
        let others: Vec<&syn::Field> = fields
            .iter()
            .filter(|f| f.ident.as_ref().is_some_and(|i| i != "reply_to"))
            .collect();
        let names: Vec<&syn::Ident> = others.iter().filter_map(|f| f.ident.as_ref()).collect();
        let tys: Vec<&syn::Type> = others.iter().map(|f| &f.ty).collect();
        let doc = format!(
            " Builds [`{ident}::{variant}`] for an ask: the asker's reply address fills `reply_to`."
        );
        fns.extend(if others.is_empty() {
            quote! {
                #[doc = #doc]
                #[allow(dead_code)]
                #[inline]
                #vis fn #name(reply_to: #reply_ty) -> Self {
                    #ident::#variant { reply_to }
                }
            }
        } else {
            quote! {
                #[doc = #doc]
                #[allow(dead_code, clippy::too_many_arguments)]
                #[inline]
                #vis fn #name(#(#names: #tys),*) -> impl ::core::ops::FnOnce(#reply_ty) -> Self {
                    move |reply_to| #ident::#variant { #(#names,)* reply_to }
                }
            }
        });
    }
    if fns.is_empty() {
        return fns;
    }
    quote! {
        #[automatically_derived]
        impl #impl_g #ident #ty_g #where_c {
            #fns
        }
    }
}
