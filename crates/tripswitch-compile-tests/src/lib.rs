//! Compile-pass and compile-fail tests of `#[tripswitch::circuit_breaker]`
//! (see `tests/`). Nothing to use here: the crate exists so that trybuild
//! compiles its cases against a small set of dependencies.
