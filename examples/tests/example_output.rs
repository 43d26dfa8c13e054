//! Runs every example binary, and its `_macros` variant, and compares each one's standard output
//! with `expected/<name>.txt`, the output the Casty (Python) documents show.

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
    ($($name:ident / $macros:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name), env!(concat!("CARGO_BIN_EXE_", stringify!($name))));
            }

            /// The macro variant prints exactly what the hand-written one prints.
            #[test]
            fn $macros() {
                check(stringify!($name), env!(concat!("CARGO_BIN_EXE_", stringify!($macros))));
            }
        )*
    };
}

examples!(
    quick_start / quick_start_macros,
    functional_state / functional_state_macros,
    request_reply / request_reply_macros,
    request_reply_self / request_reply_self_macros,
    hierarchy / hierarchy_macros,
    unreliable_worker / unreliable_worker_macros,
    supervision / supervision_macros,
    shopping_cart / shopping_cart_macros,
    otp_supervisor / otp_supervisor_macros,
    actor_runtime / actor_runtime_macros,
    event_sourcing / event_sourcing_macros,
);

/// The configuration example has no hand-written twin: it loads `examples/config/casty.toml`.
#[test]
fn configuration() {
    check("configuration", env!("CARGO_BIN_EXE_configuration"));
}

/// Remoting: two processes, a bank node and a client node.
#[test]
fn remote_bank() {
    check("remote_bank", env!("CARGO_BIN_EXE_remote_bank"));
}

/// The guide's chapters beyond the Casty (Python) examples, each one program with no macro twin.
macro_rules! single_examples {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name), env!(concat!("CARGO_BIN_EXE_", stringify!($name))));
            }
        )*
    };
}

single_examples!(
    coming_from,
    blocking_work,
    shutdown,
    observability,
    cluster_formation,
    cluster_sharding
);
