// SPDX-License-Identifier: GPL-2.0

use proc_macro::{TokenStream, TokenTree};

/// The name of the function `ts` defines: the identifier after `fn`.
fn function_name(ts: &TokenStream) -> Option<String> {
    let mut it = ts.clone().into_iter();
    while let Some(tt) = it.next() {
        if let TokenTree::Ident(i) = &tt {
            if i.to_string() == "fn" {
                if let Some(TokenTree::Ident(name)) = it.next() {
                    return Some(name.to_string());
                }
                return None;
            }
        }
    }
    None
}

pub(crate) fn export(_attr: TokenStream, ts: TokenStream) -> TokenStream {
    let Some(name) = function_name(&ts) else {
        return "::core::compile_error!(\"#[export] must be used on a function\");"
            .parse()
            .unwrap();
    };
    // Both arms of an `if` have one type: the function's signature must be the one bindgen
    // read from the C header, or this does not compile.
    let check =
        format!("const _: () = {{ if true {{ ::kernel::bindings::{name} }} else {{ {name} }}; }};");
    let mut out: TokenStream = check.parse().unwrap();
    out.extend("#[no_mangle]".parse::<TokenStream>().unwrap());
    out.extend(ts);
    out
}
