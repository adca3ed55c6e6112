//! An attacker who sees one message id (every client of a stream sees every id in the fan-out)
//! must not be able to work out the sender's next ids and claim them first. Against a seeded
//! SplitMix64, which live sockets used before, one id gives the whole sequence away; a `Socket`
//! draws its ids from the operating system's generator.

use steadyws::engine::{Config, Engine, Instant, Payload, SplitMix64};
use steadyws::{Socket, SocketConfig};

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
const M1: u64 = 0xBF58_476D_1CE4_E5B9;
const M2: u64 = 0x94D0_49BB_1331_11EB;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(M1);
    z = (z ^ (z >> 27)).wrapping_mul(M2);
    z ^ (z >> 31)
}

/// Inverse of `y = x ^ (x >> shift)`.
fn unshift(y: u64, shift: u32) -> u64 {
    let mut x = y;
    for _ in 0..=64 / shift {
        x = y ^ (x >> shift);
    }
    x
}

/// Inverse of an odd number modulo 2^64 (Newton's iteration).
fn inverse(a: u64) -> u64 {
    let mut x = a;
    for _ in 0..6 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
    }
    x
}

fn unmix(z: u64) -> u64 {
    let z = unshift(z, 31).wrapping_mul(inverse(M2));
    let z = unshift(z, 27).wrapping_mul(inverse(M1));
    unshift(z, 30)
}

fn uuid_of(a: u64, b: u64) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The id that follows `seen`, if `seen` came from a SplitMix64: the UUID's version nibble hides
/// 4 bits of the first output and its variant 2 bits of the second, so try the 16 candidates
/// and keep the one whose successor matches the second half.
fn predict_next(seen: &str) -> Option<String> {
    let bytes = *uuid::Uuid::parse_str(seen).ok()?.as_bytes();
    let a = u64::from_le_bytes(bytes[..8].try_into().ok()?);
    let b = u64::from_le_bytes(bytes[8..].try_into().ok()?);
    let variant_mask = !0xC0u64;
    (0..16u64).find_map(|nibble| {
        let candidate = (a & !(0xF0 << 48)) | (nibble << 52);
        let state = unmix(candidate);
        let second = mix(state.wrapping_add(GAMMA));
        (second & variant_mask == b & variant_mask).then(|| {
            uuid_of(
                mix(state.wrapping_add(GAMMA.wrapping_mul(2))),
                mix(state.wrapping_add(GAMMA.wrapping_mul(3))),
            )
        })
    })
}

#[test]
fn one_id_from_a_seeded_generator_predicts_the_next() {
    for seed in [1, 42, 0xDEAD_BEEF] {
        let mut engine =
            Engine::new(Config::new("ws://h/ws"), Box::new(SplitMix64::new(seed))).unwrap();
        let send = |engine: &mut Engine| {
            engine
                .send(Instant::ZERO, Payload::Json("1".into()))
                .unwrap()
                .0
        };
        let seen = send(&mut engine);
        let next = send(&mut engine);
        assert_eq!(predict_next(&seen), Some(next), "seed {seed}");
    }
}

#[test]
fn a_sockets_ids_cannot_be_predicted_that_way() {
    // Never connected: sends wait in the outbox, which is all this needs.
    let socket = Socket::new(SocketConfig::new("ws://127.0.0.1:9/ws")).unwrap();
    let ids: Vec<String> = (0..200).map(|_| socket.send("1").unwrap().0).collect();
    for pair in ids.windows(2) {
        assert_ne!(predict_next(&pair[0]), Some(pair[1].clone()));
    }
}
