//! The engine must stay sans-IO: no async runtime, no WebSocket library, no clock, no sockets,
//! files or threads. Time and randomness come in as arguments; this test keeps it that way.

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "tokio",
    "tungstenite",
    "rustls",
    "SystemTime",
    "Instant::now",
    "std::time::Instant",
    "std::net",
    "std::fs",
    "std::thread",
    "std::env",
    "getrandom",
];

/// Forbidden names on code lines (comments may mention them) of every `.rs` file under `dir`.
fn violations(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("engine folder exists") {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            found.extend(violations(&path));
            continue;
        }
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable source");
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for name in FORBIDDEN.iter().filter(|name| code.contains(*name)) {
                found.push(format!("{}:{}: uses {name}", path.display(), number + 1));
            }
        }
    }
    found
}

#[test]
fn engine_has_no_io_runtime_or_clock() {
    let engine = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let found = violations(&engine);
    assert!(
        found.is_empty(),
        "core/src/engine must stay sans-IO:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_catches_a_violation() {
    let dir = std::env::temp_dir().join(format!("steadyws-purity-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::write(
        dir.join("nested/bad.rs"),
        "// tokio in a comment is fine\nuse std::time::SystemTime;\n",
    )
    .unwrap();
    let found = violations(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with("bad.rs:2: uses SystemTime"), "{found:?}");
}
