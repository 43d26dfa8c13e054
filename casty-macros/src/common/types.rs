//! Reading types syntactically: the macros run before name resolution, so these checks look at
//! the tokens the user wrote. Anything they cannot decide is left to a trait bound checked by the
//! compiler at the user's span.

use syn::visit::Visit;
use syn::{GenericArgument, PathArguments, Type, TypePath};

/// The last segment's name and its type arguments, for a plain path type such as
/// `casty::ActorRef<u64>` (`("ActorRef", [u64])`).
pub(crate) fn last_segment(ty: &Type) -> Option<(String, Vec<&Type>)> {
    let Type::Path(TypePath { qself: None, path }) = ty else {
        return None;
    };
    let seg = path.segments.last()?;
    let args = match &seg.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| match g {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some((seg.ident.to_string(), args))
}

/// If `ty` is `Name<T>` (by its last path segment), returns `T`.
pub(crate) fn single_arg<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    match last_segment(ty) {
        Some((n, args)) if n == name && args.len() == 1 => Some(args[0]),
        _ => None,
    }
}

/// A borrow inside a type: a reference, or a lifetime other than `'static`.
pub(crate) enum Borrow<'a> {
    /// `&T` or `&'a T` (any lifetime but `'static`).
    Reference(&'a syn::TypeReference),
    /// `&'static T`.
    StaticReference(&'a syn::TypeReference),
    /// A lifetime argument such as `Cow<'a, str>`.
    Lifetime(&'a syn::Lifetime),
}

/// Finds the first borrow in `ty`, if any.
pub(crate) fn find_borrow(ty: &Type) -> Option<Borrow<'_>> {
    struct Finder<'a>(Option<Borrow<'a>>);
    impl<'a> Visit<'a> for Finder<'a> {
        fn visit_type_reference(&mut self, r: &'a syn::TypeReference) {
            if self.0.is_none() {
                let is_static = r.lifetime.as_ref().is_some_and(|l| l.ident == "static");
                self.0 = Some(if is_static {
                    Borrow::StaticReference(r)
                } else {
                    Borrow::Reference(r)
                });
            }
        }
        fn visit_lifetime(&mut self, l: &'a syn::Lifetime) {
            if self.0.is_none() && l.ident != "static" {
                self.0 = Some(Borrow::Lifetime(l));
            }
        }
        fn visit_type_bare_fn(&mut self, _: &'a syn::TypeBareFn) {
            // `fn(&str)` borrows nothing: its lifetimes are its own.
        }
    }
    let mut f = Finder(None);
    f.visit_type(ty);
    f.0
}

/// The owned type to suggest instead of a borrow of `elem`: `String` for `str`, `Vec<T>` for
/// `[T]`, else `elem` itself.
pub(crate) fn owned_hint(elem: &Type) -> String {
    match elem {
        Type::Path(p) if p.path.is_ident("str") => "String".into(),
        Type::Slice(s) => format!("Vec<{}>", show(&s.elem)),
        other => show(other),
    }
}

/// The type as the user wrote it, for messages.
pub(crate) fn show(ty: &Type) -> String {
    quote::quote!(#ty)
        .to_string()
        .replace(" < ", "<")
        .replace(" <", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace("& ", "&")
        .replace(" ,", ",")
        .replace(" :: ", "::")
        .replace(":: ", "::")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> Type {
        syn::parse_str(s).unwrap()
    }

    #[test]
    fn segments_and_args() {
        let t = ty("casty::ActorRef<u64>");
        assert!(single_arg(&t, "ActorRef").is_some());
        assert!(single_arg(&ty("ActorRef"), "ActorRef").is_none());
        assert!(single_arg(&ty("Vec<u8>"), "ActorRef").is_none());
    }

    #[test]
    fn borrows_are_found() {
        assert!(matches!(
            find_borrow(&ty("&str")),
            Some(Borrow::Reference(_))
        ));
        assert!(matches!(
            find_borrow(&ty("Vec<&'static str>")),
            Some(Borrow::StaticReference(_))
        ));
        assert!(matches!(
            find_borrow(&ty("Cow<'a, str>")),
            Some(Borrow::Lifetime(_))
        ));
        assert!(find_borrow(&ty("Vec<String>")).is_none());
        assert!(find_borrow(&ty("fn(&str) -> usize")).is_none());
    }

    #[test]
    fn types_print_compactly() {
        assert_eq!(show(&ty("ActorRef < u64 >")), "ActorRef<u64>");
        assert_eq!(show(&ty("& 'a str")), "&'a str");
    }
}
