//! The `#[circuit_breaker]` attribute's compile-time checks: the shapes it
//! accepts, and readable errors for the ones it refuses.

#[test]
fn compile_checks() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
