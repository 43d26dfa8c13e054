//! What `#[message_enum]` and `#[message]` know about the item, keeping the user's `syn` nodes so
//! that errors point at them.

use proc_macro2::Span;
use syn::{Field, Ident, LitStr, Type};

/// The attribute's keys.
#[derive(Default)]
pub(crate) struct Options {
    /// `local`: no serde; the protocol never leaves the process.
    pub(crate) local: Option<Span>,
    /// `terminated`: add a `Terminated(casty::Terminated)` variant.
    pub(crate) terminated: Option<Span>,
    /// `manifest = "..."`: the stable name on the wire and in journals.
    pub(crate) manifest: Option<LitStr>,
}

/// How a variant carries its data.
pub(crate) enum Shape {
    /// `#[unit] Stop`, or `Stop = 3`.
    Unit,
    /// A bare `Deposit`, which means `Deposit(Deposit)`.
    Shorthand,
    /// `Deposit(Deposit)`.
    Newtype,
    /// `Withdraw { amount: i64, reply_to: ActorRef<String> }`.
    Named(Vec<Field>),
    /// `Pair(u8, u8)`.
    Tuple,
}

/// One variant, as written.
pub(crate) struct Variant {
    pub(crate) ident: Ident,
    pub(crate) shape: Shape,
    /// The `#[unit]` marker, if present (stripped from the output).
    pub(crate) unit_marker: Option<syn::Attribute>,
    /// The variant with the marker stripped and a shorthand expanded: what is emitted.
    pub(crate) emitted: syn::Variant,
}

impl Variant {
    /// The payload type of a one-field tuple variant (after shorthand expansion).
    pub(crate) fn payload(&self) -> Option<&Type> {
        match &self.emitted.fields {
            syn::Fields::Unnamed(u) if u.unnamed.len() == 1 => {
                matches!(self.shape, Shape::Newtype | Shape::Shorthand).then(|| &u.unnamed[0].ty)
            }
            _ => None,
        }
    }

    /// The `reply_to` field of a struct-like variant.
    pub(crate) fn reply_to(&self) -> Option<&Field> {
        match &self.shape {
            Shape::Named(fields) => reply_to(fields),
            _ => None,
        }
    }
}

/// The `reply_to` field among named fields.
pub(crate) fn reply_to(fields: &[Field]) -> Option<&Field> {
    fields
        .iter()
        .find(|f| f.ident.as_ref().is_some_and(|i| i == "reply_to"))
}

/// The item the attribute is on.
pub(crate) enum Body {
    Enum {
        item: syn::ItemEnum,
        variants: Vec<Variant>,
    },
    Struct {
        item: syn::ItemStruct,
    },
}

/// The whole model.
pub(crate) struct Model {
    pub(crate) options: Options,
    pub(crate) body: Body,
}

impl Model {
    pub(crate) fn ident(&self) -> &Ident {
        match &self.body {
            Body::Enum { item, .. } => &item.ident,
            Body::Struct { item } => &item.ident,
        }
    }

    pub(crate) fn generics(&self) -> &syn::Generics {
        match &self.body {
            Body::Enum { item, .. } => &item.generics,
            Body::Struct { item } => &item.generics,
        }
    }

    pub(crate) fn attrs(&self) -> &[syn::Attribute] {
        match &self.body {
            Body::Enum { item, .. } => &item.attrs,
            Body::Struct { item } => &item.attrs,
        }
    }

    /// Every field of the item, with the type it declares.
    pub(crate) fn fields(&self) -> Vec<&Field> {
        match &self.body {
            Body::Enum { variants, .. } => variants
                .iter()
                .filter(|v| !matches!(v.shape, Shape::Shorthand))
                .flat_map(|v| v.emitted.fields.iter())
                .collect(),
            Body::Struct { item } => item.fields.iter().collect(),
        }
    }
}
