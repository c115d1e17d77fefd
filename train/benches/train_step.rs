//! `cargo bench -p dsan-train --bench train_step [--features libtorch]`: one
//! training step of one web-default branch (forward, CE + attention loss,
//! backward, Adam) at batch 1, 2 and 4, and the two-branch inference forward
//! at batch 1, on every CPU backend of the build (Burn's Flex; LibTorch with
//! the feature) and in PyTorch on the CPU (`tests/gpu/torch_step.py`, the
//! reference), all on the same number of threads, in turn in one process.
//!
//! Prints ms per step (median and fastest), cases/s and each ratio to
//! PyTorch. Environment: `DSAN_BENCH_THREADS` (default: every core),
//! `DSAN_BENCH_RUNS` (timed repetitions, default 5), `DSAN_BENCH_BATCHES`
//! (default `1,2,4`), `DSAN_BENCH_ONLY` (names to run, e.g. `burn-flex` for
//! a profile; default all), `DSAN_PYTHON` (a Python with torch; default: the
//! venv whose torch `LIBTORCH` names, else `python3`).

use std::path::{Path, PathBuf};
use std::process::Command;

use dsan_ct::model::DsanConfig;
use dsan_train::bench::{CpuBackend, Workload};

struct Figure {
    median_ms: f64,
    min_ms: f64,
}

impl Figure {
    fn of(mut times: Vec<f64>) -> Figure {
        times.sort_by(f64::total_cmp);
        Figure {
            median_ms: times[times.len() / 2],
            min_ms: times[0],
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The Python beside the torch package that `LIBTORCH` names
/// (`<venv>/lib/pythonX.Y/site-packages/torch` -> `<venv>/bin/python`).
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("DSAN_PYTHON") {
        return python.into();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::var_os("LIBTORCH")
        .map(|lib| root.join(lib))
        .and_then(|lib| lib.canonicalize().ok())
        .and_then(|lib| lib.ancestors().nth(4).map(|venv| venv.join("bin/python")))
        .filter(|python| python.exists())
        .unwrap_or_else(|| "python3".into())
}

/// PyTorch's figure for `work`, from tests/gpu/torch_step.py on the CPU.
fn pytorch(work: Workload, threads: usize, runs: usize) -> Result<Figure, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/gpu/torch_step.py");
    let (mode, batch) = match work {
        Workload::TrainStep { batch } => ("train", batch),
        Workload::Inference => ("infer", 1),
    };
    let output = Command::new(python())
        .arg(&script)
        .args(["--device", "cpu", "--mode", mode])
        .args(["--batch", &batch.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--steps", &runs.to_string()])
        .args(["--warmup", "2", "--times"])
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
    }
    let line = String::from_utf8_lossy(&output.stdout);
    let value: serde_json::Value =
        serde_json::from_str(line.trim()).map_err(|e| format!("{e}: {line}"))?;
    let times: Vec<f64> = value["times_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
        .unwrap_or_default();
    if times.is_empty() {
        return Err(format!("no times in {line}"));
    }
    Ok(Figure::of(times))
}

fn report(label: &str, cases: usize, figures: &[(String, Result<Figure, String>)]) {
    let reference = figures
        .iter()
        .find(|(name, _)| name.starts_with("pytorch"))
        .and_then(|(_, f)| f.as_ref().ok())
        .map(|f| f.median_ms);
    for (name, figure) in figures {
        match figure {
            Ok(f) => {
                let ratio = reference
                    .map(|r| format!(", {:.2}x pytorch", f.median_ms / r))
                    .unwrap_or_default();
                println!(
                    "{label} {name}: {:.1} ms (fastest {:.1}), {:.2} cases/s{ratio}",
                    f.median_ms,
                    f.min_ms,
                    cases as f64 / f.median_ms * 1e3
                );
            }
            Err(e) => println!("{label} {name}: not run ({e})"),
        }
    }
}

fn main() {
    let threads = env_or(
        "DSAN_BENCH_THREADS",
        std::thread::available_parallelism().map_or(1, usize::from),
    );
    let runs: usize = env_or("DSAN_BENCH_RUNS", 5).max(1);
    let batches: Vec<usize> = std::env::var("DSAN_BENCH_BATCHES")
        .unwrap_or_else(|_| "1,2,4".into())
        .split(',')
        .filter_map(|b| b.trim().parse().ok())
        .collect();
    let only: Option<Vec<String>> = std::env::var("DSAN_BENCH_ONLY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    let wanted = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|w| w == name));
    let config = DsanConfig::web_default();
    println!(
        "web default (input {:?}, width {}), {threads} threads, median of {runs} runs after warm-up",
        config.input, config.base_width
    );
    let mut workloads: Vec<(Workload, usize)> = batches
        .iter()
        .map(|&batch| (Workload::TrainStep { batch }, batch))
        .collect();
    workloads.push((Workload::Inference, 1));
    for (work, cases) in workloads {
        let mut figures: Vec<(String, Result<Figure, String>)> = CpuBackend::all()
            .into_iter()
            .filter(|backend| wanted(backend.name()))
            .map(|backend| {
                let figure = backend
                    .time(&config, work, 2, runs, threads)
                    .map(Figure::of)
                    .map_err(|e| format!("{e:#}"));
                (backend.name().to_owned(), figure)
            })
            .collect();
        if wanted("pytorch") {
            figures.push(("pytorch".into(), pytorch(work, threads, runs)));
        }
        let label = match work {
            Workload::TrainStep { batch } => format!("train step b{batch}"),
            Workload::Inference => "inference (both branches) b1".into(),
        };
        report(&label, cases, &figures);
    }
}
