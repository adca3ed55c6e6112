//! Replays the committed fuzz seeds (`tests/fuzz/seeds/`) through the fuzz targets' bodies in the
//! ordinary test run: a decoder or engine regression on any of them fails here, with no fuzzer.
//! Longer fuzzing runs with `cargo +nightly fuzz run engine|envelope` in `tests/fuzz`.

#[path = "../../tests/fuzz/src/targets.rs"]
mod targets;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fuzz/seeds")
        .join(target);
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    seeds.sort();
    assert!(
        seeds.len() >= 5,
        "{} holds only {} seeds",
        dir.display(),
        seeds.len()
    );
    for seed in seeds {
        let data = std::fs::read(&seed).unwrap();
        run(&data);
        // Every prefix too: a cheap stand-in for the truncations a fuzzer tries first.
        for cut in (0..data.len()).step_by(7) {
            run(&data[..cut]);
        }
    }
}

#[test]
fn engine_seeds_keep_the_engine_sound() {
    replay("engine", targets::engine);
}

#[test]
fn envelope_seeds_decode_or_fail_cleanly() {
    replay("envelope", targets::envelope);
}
