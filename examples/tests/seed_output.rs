//! Runs every example binary and compares its standard output with `expected/<name>.txt`, the
//! output the seed documents show.

use std::path::Path;
use std::process::Command;

fn check(name: &str, exe: &str) {
    let out = Command::new(exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    assert!(
        out.status.success(),
        "{name} exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let expected_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("expected")
        .join(format!("{name}.txt"));
    let expected = std::fs::read_to_string(&expected_path).expect("expected output file");
    let actual = String::from_utf8(out.stdout).expect("utf-8 output");
    assert_eq!(
        actual,
        expected,
        "{name}: output differs from {}",
        expected_path.display()
    );
}

macro_rules! examples {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name), env!(concat!("CARGO_BIN_EXE_", stringify!($name))));
            }
        )*
    };
}

examples!(
    quick_start,
    functional_state,
    request_reply,
    request_reply_self,
    hierarchy,
    unreliable_worker,
    supervision,
    shopping_cart,
    otp_supervisor,
    actor_runtime,
);
