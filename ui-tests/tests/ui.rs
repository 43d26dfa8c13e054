//! Compile-fail tests. Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test -p
//! casty-ui-tests` and read the diff. The `.stderr` files match the workspace's stable toolchain
//! (rustc 1.95); a different compiler may word its notes differently.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/pass/*.rs");
    t.compile_fail("tests/ui/*/*.rs");
}
