//! Pieces every macro shares: error collection, attribute keys, type inspection and the
//! `CASTY_MACROS_DEBUG` printer.

pub(crate) mod errors;
pub(crate) mod keys;
pub(crate) mod types;

use proc_macro2::TokenStream;

/// Finishes an expansion: prints it when `CASTY_MACROS_DEBUG=1`, then hands it to the compiler.
pub(crate) fn emit(macro_name: &str, item_name: &str, tokens: TokenStream) -> TokenStream {
    if std::env::var("CASTY_MACROS_DEBUG").is_ok_and(|v| v == "1") {
        eprintln!("{}", render(macro_name, item_name, &tokens));
    }
    tokens
}

/// The expansion as readable Rust, under a header naming the macro and the item.
fn render(macro_name: &str, item_name: &str, tokens: &TokenStream) -> String {
    let pretty = match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(_) => tokens.to_string(),
    };
    format!("// ---- #[{macro_name}] {item_name} ----\n{pretty}")
}

/// The keyword that starts an item, for pointing an error at it.
pub(crate) fn item_head(item: &syn::Item) -> TokenStream {
    use quote::ToTokens;
    use syn::Item;
    match item {
        Item::Fn(f) => f.sig.fn_token.to_token_stream(),
        Item::Struct(s) => s.struct_token.to_token_stream(),
        Item::Enum(e) => e.enum_token.to_token_stream(),
        Item::Union(u) => u.union_token.to_token_stream(),
        Item::Trait(t) => t.trait_token.to_token_stream(),
        Item::Impl(i) => i.impl_token.to_token_stream(),
        Item::Type(t) => t.type_token.to_token_stream(),
        Item::Mod(m) => m.mod_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}

/// Turns `GetBalance` into `get_balance` (and `HTTPServer` into `http_server`).
pub(crate) fn snake_case(ident: &str) -> String {
    let chars: Vec<char> = ident.chars().collect();
    let mut out = String::with_capacity(ident.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None | Some('_') => false,
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) => p.is_uppercase() && next.is_some_and(char::is_lowercase),
            };
            if boundary {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{render, snake_case};

    #[test]
    fn debug_output_is_pretty_printed() {
        let out = render(
            "behavior",
            "f",
            &quote::quote!(
                fn f() -> u8 {
                    1
                }
            ),
        );
        assert_eq!(
            out,
            "// ---- #[behavior] f ----\nfn f() -> u8 {\n    1\n}\n"
        );
    }

    #[test]
    fn snake_case_splits_words_and_acronyms() {
        assert_eq!(snake_case("GetBalance"), "get_balance");
        assert_eq!(snake_case("Withdraw"), "withdraw");
        assert_eq!(snake_case("HTTPServer"), "http_server");
        assert_eq!(snake_case("Get2Items"), "get2_items");
        assert_eq!(snake_case("A"), "a");
    }
}
