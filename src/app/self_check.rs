//! The model self-check panel: builds a seeded, randomly initialised model on
//! the chosen backend and times its forward pass on the synthetic input.

use burn::prelude::Module;
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Serialize;

use super::compute::{Backend, Compute, CpuBackend, GpuBackend};
use super::now_ms;
use crate::model::DsanConfig;
use crate::probe::{ForwardSummary, ProbeError, forward_summary, seeded_model};

/// Seed of the self-check model; the native reference uses the same one.
pub const SELF_CHECK_SEED: u64 = 42;

/// What a self-check run measured (also shown as JSON for the browser tests).
#[derive(Debug, Clone, Serialize)]
pub struct SelfCheckReport {
    /// Backend that ran it.
    pub backend: &'static str,
    /// Preset name.
    pub config: &'static str,
    /// Parameters of both branches.
    pub parameters: usize,
    /// Seeding, building and moving the model to the backend, ms.
    pub build_ms: f64,
    /// First forward, including shader compilation on WebGPU, ms.
    pub first_forward_ms: f64,
    /// Second forward (warm), ms.
    pub forward_ms: f64,
    /// Outputs of the warm forward.
    pub summary: ForwardSummary,
}

fn preset(name: &str) -> (&'static str, DsanConfig) {
    match name {
        "tiny" => ("tiny", DsanConfig::tiny()),
        _ => ("web-default", DsanConfig::web_default()),
    }
}

async fn run<B: burn::prelude::Backend>(
    backend: Backend,
    name: &'static str,
    config: DsanConfig,
    device: B::Device,
) -> Result<SelfCheckReport, ProbeError> {
    // Each step is long and, on the CPU backend, synchronous: hand the event
    // loop back before each, so the click that started it completes and the
    // page repaints ("Running…") in between.
    TimeoutFuture::new(0).await;
    let start = now_ms();
    let model = seeded_model::<B>(&config, SELF_CHECK_SEED, &device)?;
    let built = now_ms();
    TimeoutFuture::new(0).await;
    let before_first = now_ms();
    forward_summary(&model, &config, &device).await?;
    let first = now_ms();
    TimeoutFuture::new(0).await;
    let before_second = now_ms();
    let summary = forward_summary(&model, &config, &device).await?;
    let second = now_ms();
    Ok(SelfCheckReport {
        backend: backend.label(),
        config: name,
        parameters: model.num_params(),
        build_ms: built - start,
        first_forward_ms: first - before_first,
        forward_ms: second - before_second,
        summary,
    })
}

/// The self-check panel.
#[component]
pub fn SelfCheck(
    /// The backend chosen for this page.
    compute: Compute,
) -> impl IntoView {
    let (preset_name, set_preset_name) = signal("web-default".to_owned());
    let (running, set_running) = signal(false);
    let (result, set_result) = signal(None::<Result<SelfCheckReport, String>>);
    let backend = compute.backend;

    let start = move |_| {
        let (name, config) = preset(&preset_name.get_untracked());
        set_running.set(true);
        set_result.set(None);
        spawn_local(async move {
            let outcome = match backend {
                Backend::WebGpu => {
                    run::<GpuBackend>(backend, name, config, Default::default()).await
                }
                Backend::Cpu => run::<CpuBackend>(backend, name, config, Default::default()).await,
            };
            set_result.set(Some(outcome.map_err(|e| e.to_string())));
            set_running.set(false);
        });
    };

    view! {
        <section class="panel" aria-labelledby="self-check-title">
            <h2 id="self-check-title">"Model self-check"</h2>
            <p>
                "Builds a randomly initialised DSAN (seed " {SELF_CHECK_SEED} ") on this page's "
                "backend and times one forward pass on a synthetic chest phantom. "
                "Random weights: the output is not a diagnosis."
            </p>
            <label for="preset">"Network "</label>
            <select id="preset" data-testid="model-preset"
                on:change=move |ev| set_preset_name.set(event_target_value(&ev))>
                <option value="web-default" selected>"web default (ResNet-34, 64x128x128)"</option>
                <option value="tiny">"tiny (quick check)"</option>
            </select>
            " "
            <button data-testid="run-model" on:click=start disabled=move || running.get()>
                "Build random model and run"
            </button>
            <Show when=move || running.get()>
                <p data-testid="progress" role="status">"Running…"</p>
            </Show>
            {move || result.get().map(|outcome| match outcome {
                Ok(report) => view! { <Report report /> }.into_any(),
                Err(message) => view! {
                    <p class="error" data-testid="error-list" role="alert">{message}</p>
                }.into_any(),
            })}
        </section>
    }
}

/// The figures of one run.
#[component]
fn Report(
    /// The run to show.
    report: SelfCheckReport,
) -> impl IntoView {
    let json = serde_json::to_string(&report).unwrap_or_default();
    let covid = report.summary.ensemble.get(1).copied().unwrap_or(f32::NAN);
    view! {
        <dl data-testid="forward-result">
            <dt>"Backend"</dt><dd>{report.backend}</dd>
            <dt>"Parameters"</dt><dd>{report.parameters}</dd>
            <dt>"Build"</dt><dd>{format!("{:.0} ms", report.build_ms)}</dd>
            <dt>"First forward (incl. compilation)"</dt><dd>{format!("{:.0} ms", report.first_forward_ms)}</dd>
            <dt>"Forward"</dt><dd data-testid="forward-ms">{format!("{:.0} ms", report.forward_ms)}</dd>
            <dt>"Class 1 output of the random model"</dt><dd>{format!("{covid:.4}")}</dd>
        </dl>
        <pre data-testid="forward-json" data-config=report.config hidden>{json}</pre>
    }
}
