//! Forward-pass benchmark of the DSAN model on Burn's native CPU backend
//! (`cargo bench --bench forward`). Prints the parameter count, the f16 weights
//! size and milliseconds per forward (both branches, batch 1) for the web
//! default network, with the tiny network timed in the same process as the
//! reference.

use std::time::Instant;

use burn::prelude::*;
use dsan_ct::CpuBackend;
use dsan_ct::model::{DsanConfig, synthetic_input};
use dsan_ct::probe::seeded_model;
use dsan_ct::weights::{WeightsError, encode_weights};

type B = CpuBackend;

struct Figures {
    parameters: usize,
    weights_bytes: u64,
    median_ms: f64,
    min_ms: f64,
}

fn measure(config: &DsanConfig, runs: usize) -> Result<Figures, WeightsError> {
    let device = Default::default();
    let model = seeded_model::<B>(config, 42, &device)?;
    let (entry, _) = encode_weights(model.clone(), "bench.mpk")?;
    let input = synthetic_input::<B>(config.input, &device);
    // Warm-up: allocations and lazy initialisation.
    let _ = model.forward(input.clone()).probabilities.into_data();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let _ = model.forward(input.clone()).probabilities.into_data();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    Ok(Figures {
        parameters: model.num_params(),
        weights_bytes: entry.bytes,
        median_ms: times[times.len() / 2],
        min_ms: times[0],
    })
}

fn main() -> Result<(), WeightsError> {
    let runs = std::env::var("DSAN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let tiny = measure(&DsanConfig::tiny(), runs)?;
    let web = measure(&DsanConfig::web_default(), runs)?;
    for (name, f) in [("tiny (reference)", &tiny), ("web default", &web)] {
        println!(
            "{name:>18}: {:>9} parameters, f16 weights {:>9} bytes, forward median {:>9.1} ms (min {:.1} ms, {runs} runs)",
            f.parameters, f.weights_bytes, f.median_ms, f.min_ms
        );
    }
    println!(
        "web default / tiny forward time: {:.1}x",
        web.median_ms / tiny.median_ms
    );
    Ok(())
}
