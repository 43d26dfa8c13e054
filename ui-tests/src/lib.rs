//! trybuild compile-fail tests: casty's type safety checked at compile time. See `tests/ui.rs`.
