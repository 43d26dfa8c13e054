//! Parsing: attribute keys and the item into a [`Model`].

use proc_macro2::TokenStream;
use syn::punctuated::Punctuated;
use syn::{Fields, FieldsUnnamed, Item};

use super::model::{Body, Model, Options, Shape, Variant};
use crate::common::errors::Errors;
use crate::common::item_head;
use crate::common::keys::{self, KeyKind};

/// Which attribute is being expanded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `#[message_enum]`
    Enum,
    /// `#[message]`
    Struct,
}

impl Target {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Target::Enum => "message_enum",
            Target::Struct => "message",
        }
    }

    fn keys(self) -> &'static [(&'static str, KeyKind)] {
        match self {
            Target::Enum => &[
                ("local", KeyKind::Flag),
                ("terminated", KeyKind::Flag),
                ("manifest", KeyKind::Str),
            ],
            Target::Struct => &[("local", KeyKind::Flag), ("manifest", KeyKind::Str)],
        }
    }
}

/// Parses the attribute and the item. Returns `None` when the item is not of the right kind (the
/// error is recorded).
pub(crate) fn parse(
    target: Target,
    args: TokenStream,
    input: TokenStream,
    errors: &mut Errors,
) -> Option<Model> {
    let mut options = Options::default();
    for key in keys::parse(target.name(), args, target.keys(), errors) {
        match key.name.as_str() {
            "local" => options.local = Some(key.span),
            "terminated" => options.terminated = Some(key.span),
            "manifest" => options.manifest = key.value,
            _ => {}
        }
    }
    let item: Item = match syn::parse2(input) {
        Ok(i) => i,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let body = match (target, item) {
        (Target::Enum, Item::Enum(e)) => {
            let variants = e.variants.iter().map(|v| variant(v, errors)).collect();
            Body::Enum { item: e, variants }
        }
        (Target::Struct, Item::Struct(s)) => Body::Struct { item: s },
        (Target::Enum, Item::Struct(s)) => {
            errors.at(
                s.struct_token,
                "`#[message_enum]` goes on an enum; for a struct message, write `#[message]` instead",
            );
            return None;
        }
        (Target::Struct, Item::Enum(e)) => {
            errors.at(
                e.enum_token,
                "`#[message]` goes on a struct; for a protocol enum, write `#[message_enum]` instead",
            );
            return None;
        }
        (t, other) => {
            let what = match t {
                Target::Enum => "a protocol `enum`",
                Target::Struct => "a message `struct`",
            };
            errors.at(
                item_head(&other),
                format!(
                    "`#[{}]` goes on {what}, not on this item; declare the message type and put the attribute on it",
                    t.name()
                ),
            );
            return None;
        }
    };
    Some(Model { options, body })
}

/// Reads one variant: strips `#[unit]`, expands a shorthand.
fn variant(v: &syn::Variant, errors: &mut Errors) -> Variant {
    let mut emitted = v.clone();
    let unit_marker = emitted
        .attrs
        .iter()
        .position(|a| a.path().is_ident("unit"))
        .map(|i| emitted.attrs.remove(i));
    if let Some(Err(e)) = unit_marker.as_ref().map(|a| a.meta.require_path_only()) {
        errors.push(e);
    }
    let shape = match &v.fields {
        Fields::Unit if unit_marker.is_some() || v.discriminant.is_some() => Shape::Unit,
        Fields::Unit => {
            let ty: syn::Type = syn::Type::Path(syn::TypePath {
                qself: None,
                path: v.ident.clone().into(),
            });
            let mut unnamed = Punctuated::new();
            unnamed.push(syn::Field {
                attrs: Vec::new(),
                vis: syn::Visibility::Inherited,
                mutability: syn::FieldMutability::None,
                ident: None,
                colon_token: None,
                ty,
            });
            emitted.fields = Fields::Unnamed(FieldsUnnamed {
                paren_token: Default::default(),
                unnamed,
            });
            Shape::Shorthand
        }
        Fields::Unnamed(u) if u.unnamed.len() == 1 => Shape::Newtype,
        Fields::Unnamed(_) => Shape::Tuple,
        Fields::Named(n) => Shape::Named(n.named.iter().cloned().collect()),
    };
    Variant {
        ident: v.ident.clone(),
        shape,
        unit_marker,
        emitted,
    }
}
