//! The loader of a site's own model on arbitrary bytes: a model card (JSON)
//! and, after the first NUL byte, its weights file. The card goes through
//! every check the page and `dsan` make before anything is allocated; the
//! weights are then decoded for the card's network when it parses (its
//! checksum taken as right, so that the record reader behind it is reached),
//! and for the tiny network otherwise. Any panic, and any allocation past
//! libFuzzer's `-rss_limit_mb`, is a bug: a bad model file must be an error
//! naming the file.
#![no_main]

use std::sync::LazyLock;

use dsan_ct::CpuBackend;
use dsan_ct::model::DsanConfig;
use dsan_ct::probe::seeded_card;
use dsan_ct::weights::{WeightsFile, decode_weights, parse_card, sha256_hex};
use libfuzzer_sys::fuzz_target;

/// The tiny network's card entry, for weights whose card did not parse.
static TINY: LazyLock<WeightsFile> = LazyLock::new(|| {
    seeded_card(&DsanConfig::tiny(), 0)
        .expect("the tiny network encodes")
        .0
        .weights
});

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (card, weights) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let (architecture, entry) = match parse_card("fuzz.json", card) {
        Ok(card) if card.weights.bytes == weights.len() as u64 => (card.architecture, card.weights),
        _ => (
            DsanConfig::tiny(),
            WeightsFile {
                bytes: weights.len() as u64,
                ..TINY.clone()
            },
        ),
    };
    let entry = WeightsFile {
        sha256: sha256_hex(weights),
        ..entry
    };
    let _ = decode_weights::<CpuBackend>(&architecture, &entry, weights, &Default::default());
});
