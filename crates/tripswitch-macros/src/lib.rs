//! The `#[circuit_breaker]` attribute of [tripswitch](https://docs.rs/tripswitch).
//! Use it through `tripswitch::circuit_breaker`; its documentation is there.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, FnArg, ItemFn, Pat, ReturnType, Signature, Type, parse_macro_input};

/// Wraps an `async fn` returning `Result<T, E>` in a circuit breaker.
/// See `tripswitch::circuit_breaker` for the documentation.
#[proc_macro_attribute]
pub fn circuit_breaker(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item2: TokenStream2 = item.clone().into();
    let breaker = match syn::parse::<Expr>(attr) {
        Ok(expr) => expr,
        Err(err) => return with_error(item2, err),
    };
    let function = parse_macro_input!(item as ItemFn);
    match expand(breaker, function) {
        Ok(tokens) => tokens.into(),
        Err(err) => with_error(item2, err),
    }
}

/// The original item plus the error, so that IDEs keep seeing the function.
fn with_error(item: TokenStream2, err: syn::Error) -> TokenStream {
    let error = err.to_compile_error();
    quote!(#item #error).into()
}

fn expand(breaker: Expr, mut function: ItemFn) -> syn::Result<TokenStream2> {
    check_signature(&function.sig)?;
    let return_type = match &function.sig.output {
        ReturnType::Type(_, ty) => (**ty).clone(),
        ReturnType::Default => {
            return Err(syn::Error::new(
                function.sig.fn_token.span(),
                "`#[circuit_breaker]` needs a function returning `Result<T, E>`; this one returns `()`",
            ));
        }
    };

    // Each run of the body gets its own copies of the arguments: the seed's
    // retry may run it twice.
    let mut rebind = Vec::new();
    for (index, input) in function.sig.inputs.iter_mut().enumerate() {
        let FnArg::Typed(arg) = input else { continue };
        if let Type::Reference(reference) = &*arg.ty
            && reference.mutability.is_some()
        {
            return Err(syn::Error::new_spanned(
                &arg.ty,
                "`#[circuit_breaker]` cannot pass a `&mut` argument to a body that may run twice; \
                 take a shared reference or an owned, cloneable value",
            ));
        }
        let name = format_ident!("__tripswitch_arg{}", index, span = Span::mixed_site());
        let original = std::mem::replace(&mut *arg.pat, Pat::Verbatim(quote!(#name)));
        let ty = &arg.ty;
        let span = ty.span();
        let pattern = original;
        rebind.push(quote_spanned! {span=>
            #[allow(unused_mut)]
            let #pattern: #ty = ::core::clone::Clone::clone(&#name);
        });
    }

    let body = &function.block;
    let ret = &return_type;
    let ret_span = ret.span();
    let is_result = quote_spanned! {ret_span=>
        <#ret as ::tripswitch::__private::IsResult>
    };
    function.sig.output = syn::parse_quote_spanned! {ret_span=>
        -> ::core::result::Result<
            #is_result::Ok,
            ::tripswitch::Error<#is_result::Err>,
        >
    };
    let breaker_span = breaker.span();
    // A `let` with a declared type is a coercion site: `&LazyLock<_>`,
    // `&Arc<_>` and `&&CircuitBreaker` all deref-coerce to `&CircuitBreaker`.
    let breaker_ref = quote_spanned! {breaker_span=> &(#breaker) };

    function.block = syn::parse_quote! {{
        let __tripswitch_breaker: &::tripswitch::CircuitBreaker = #breaker_ref;
        __tripswitch_breaker
            .execute(|| {
                #(#rebind)*
                async move {
                    let __tripswitch_result: #ret = async move #body.await;
                    #is_result::into_result(__tripswitch_result)
                }
            })
            .await
    }};
    Ok(quote!(#function))
}

fn check_signature(sig: &Signature) -> syn::Result<()> {
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "`#[circuit_breaker]` goes on an `async fn`; add `async`",
        ));
    }
    for input in &sig.inputs {
        if let FnArg::Receiver(receiver) = input {
            if receiver.reference.is_none() {
                return Err(syn::Error::new_spanned(
                    receiver,
                    "`#[circuit_breaker]` does not support `self` by value (the body may run twice); take `&self`",
                ));
            }
            if receiver.mutability.is_some() {
                return Err(syn::Error::new_spanned(
                    receiver,
                    "`#[circuit_breaker]` does not support `&mut self` (the body may run twice); take `&self`",
                ));
            }
        }
    }
    Ok(())
}
