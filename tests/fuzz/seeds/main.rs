//! Writes the seed inputs of the `load_model` fuzz target that no file in
//! ../shared/data provides: the tiny network's card and weights as one input
//! (card, a NUL byte, weights), and the weights alone.
//!
//! `cargo +nightly run --manifest-path tests/fuzz/Cargo.toml --bin seeds -- DIR`

use std::path::PathBuf;

use dsan_ct::model::DsanConfig;
use dsan_ct::probe::seeded_card;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: seeds DIR")?);
    std::fs::create_dir_all(&dir)?;
    let (card, weights) = seeded_card(&DsanConfig::tiny(), 0)?;
    let mut input = serde_json::to_vec(&card)?;
    input.push(0);
    input.extend_from_slice(&weights);
    std::fs::write(dir.join("tiny-card-and-weights"), input)?;
    let mut alone = vec![0];
    alone.extend_from_slice(&weights);
    std::fs::write(dir.join("tiny-weights"), alone)?;
    Ok(())
}
