//! Attribute arguments: `#[message_enum(local, manifest = "bank.AccountMsg")]`.
//!
//! Each macro declares its valid keys. An unknown key is an error that lists the valid ones and
//! suggests the closest.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitInt, LitStr, Meta, Token};

use super::errors::Errors;

/// What a key takes.
#[derive(Clone, Copy)]
pub(crate) enum KeyKind {
    /// A bare word: `local`.
    Flag,
    /// `key = "string"`.
    Str,
    /// `key = 123`.
    Int,
}

/// A key that was given.
pub(crate) struct Given {
    pub(crate) name: String,
    pub(crate) span: Span,
    pub(crate) value: Option<LitStr>,
    pub(crate) int: Option<LitInt>,
}

/// Parses `args` against `valid`, recording every problem in `errors`.
pub(crate) fn parse(
    macro_name: &str,
    args: TokenStream,
    valid: &[(&str, KeyKind)],
    errors: &mut Errors,
) -> Vec<Given> {
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args) {
        Ok(m) => m,
        Err(e) => {
            errors.push(e);
            return Vec::new();
        }
    };
    let mut given: Vec<Given> = Vec::new();
    for meta in metas {
        let path = meta.path();
        let name = path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_else(|| quote::quote!(#path).to_string().replace(' ', ""));
        let Some(&(_, kind)) = valid.iter().find(|(k, _)| *k == name) else {
            errors.at(path, unknown_key(macro_name, &name, valid));
            continue;
        };
        if given.iter().any(|g| g.name == name) {
            errors.at(path, format!("`{name}` is given twice; keep one"));
            continue;
        }
        let mut int = None;
        let value = match (kind, &meta) {
            (KeyKind::Flag, Meta::Path(_)) => None,
            (
                KeyKind::Int,
                Meta::NameValue(syn::MetaNameValue {
                    value:
                        Expr::Lit(ExprLit {
                            lit: Lit::Int(i), ..
                        }),
                    ..
                }),
            ) => {
                int = Some(i.clone());
                None
            }
            (KeyKind::Int, other) => {
                errors.at(
                    other,
                    format!("`{name}` takes a whole number; write `#[{macro_name}({name} = 100)]`"),
                );
                continue;
            }
            (KeyKind::Flag, other) => {
                errors.at(
                    other,
                    format!(
                        "`{name}` is a flag and takes no value; write `#[{macro_name}({name})]`"
                    ),
                );
                continue;
            }
            (
                KeyKind::Str,
                Meta::NameValue(syn::MetaNameValue {
                    value:
                        Expr::Lit(ExprLit {
                            lit: Lit::Str(s), ..
                        }),
                    ..
                }),
            ) => Some(s.clone()),
            (KeyKind::Str, other) => {
                errors.at(
                    other,
                    format!("`{name}` takes a string; write `#[{macro_name}({name} = \"...\")]`"),
                );
                continue;
            }
        };
        given.push(Given {
            name,
            span: syn::spanned::Spanned::span(&meta),
            value,
            int,
        });
    }
    given
}

fn unknown_key(macro_name: &str, name: &str, valid: &[(&str, KeyKind)]) -> String {
    let list = if valid.is_empty() {
        format!("`#[{macro_name}]` takes no keys")
    } else {
        let keys: Vec<String> = valid.iter().map(|(k, _)| format!("`{k}`")).collect();
        format!("valid keys: {}", keys.join(", "))
    };
    let hint = valid
        .iter()
        .map(|(k, _)| (strsim::levenshtein(name, k), *k))
        .filter(|(d, k)| *d <= k.len().max(name.len()) / 2)
        .min()
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    format!("unknown key `{name}` for `#[{macro_name}]`; {list}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_key() {
        let valid = [("local", KeyKind::Flag), ("manifest", KeyKind::Str)];
        let m = unknown_key("message_enum", "locl", &valid);
        assert!(m.contains("valid keys: `local`, `manifest`"), "{m}");
        assert!(m.ends_with("did you mean `local`?"), "{m}");
        let m = unknown_key("message_enum", "zzzzzz", &valid);
        assert!(!m.contains("did you mean"), "{m}");
    }
}
