//! Compile tests of `#[function]` and `functions!`: what must compile (and run),
//! and the error each mistake produces, checked against `tests/ui/fail/*.stderr`.
//!
//! Regenerate the snapshots with `TRYBUILD=overwrite cargo test -p faas-macros --test ui`,
//! then read every changed `.stderr`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
