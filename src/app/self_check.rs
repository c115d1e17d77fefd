//! The model self-check: the page's panel asks the compute worker to build a
//! seeded, randomly initialised model on the chosen backend and to time its
//! forward pass on the synthetic input ([`measure`] runs there).

use burn::prelude::Module;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::{Deserialize, Serialize};

use super::compute::{Backend, Compute};
use super::now_ms;
use super::worker_client;
use crate::model::DsanConfig;
use crate::probe::{ForwardSummary, ProbeError, forward_summary, seeded_model};

/// Seed of the self-check model; the native reference uses the same one.
pub const SELF_CHECK_SEED: u64 = 42;

/// The networks the self-check offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// [`DsanConfig::web_default`].
    WebDefault,
    /// [`DsanConfig::tiny`].
    Tiny,
}

impl Preset {
    /// The preset's name (the select's value).
    pub fn name(self) -> &'static str {
        match self {
            Self::WebDefault => "web-default",
            Self::Tiny => "tiny",
        }
    }

    /// The preset's architecture.
    pub fn config(self) -> DsanConfig {
        match self {
            Self::WebDefault => DsanConfig::web_default(),
            Self::Tiny => DsanConfig::tiny(),
        }
    }

    /// The preset a name stands for (the web default for any other).
    pub fn from_name(name: &str) -> Self {
        match name {
            "tiny" => Self::Tiny,
            _ => Self::WebDefault,
        }
    }
}

/// What a self-check run measured (also shown as JSON for the browser tests).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SelfCheckReport {
    /// Backend that ran it.
    pub backend: String,
    /// Preset name.
    pub config: String,
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

/// Builds the seeded network of `preset` on `device` and times a cold and a
/// warm forward pass (in the compute worker, which may block).
pub async fn measure<B: burn::prelude::Backend>(
    backend: Backend,
    preset: Preset,
    device: B::Device,
) -> Result<SelfCheckReport, ProbeError> {
    let config = preset.config();
    let start = now_ms();
    let model = seeded_model::<B>(&config, SELF_CHECK_SEED, &device)?;
    let built = now_ms();
    forward_summary(&model, &config, &device).await?;
    let first = now_ms();
    let summary = forward_summary(&model, &config, &device).await?;
    let second = now_ms();
    Ok(SelfCheckReport {
        backend: backend.label().to_owned(),
        config: preset.name().to_owned(),
        parameters: model.num_params(),
        build_ms: built - start,
        first_forward_ms: first - built,
        forward_ms: second - first,
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
        let preset = Preset::from_name(&preset_name.get_untracked());
        set_running.set(true);
        set_result.set(None);
        spawn_local(async move {
            let outcome = worker_client::self_check(backend, preset).await;
            set_result.set(Some(outcome.map_err(|e| e.to_string())));
            set_running.set(false);
        });
    };

    view! {
        <section class="panel" aria-labelledby="self-check-title">
            <h2 id="self-check-title">"Model self-check"</h2>
            <p>
                "Builds a randomly initialised DSAN (seed " {SELF_CHECK_SEED} ") on this page's "
                "backend, in the compute worker, and times one forward pass on a synthetic chest phantom. "
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
        <pre data-testid="forward-json" data-config=report.config.clone() hidden>{json}</pre>
    }
}
