//! The diagnosis panel: runs the library's pipeline on the volume on screen
//! in the compute worker, on the page's backend (WebGPU or CPU), with
//! progress by stage. It runs by itself once the CT is open (as soon as the
//! backend is known and the bundled model has been looked for) and again
//! whenever another network is chosen, a newer run cancelling an older one;
//! the Diagnose button runs it again. The result card is [`DiagnosisView`].
//!
//! The model is the one bundled with the page (the default when one ships),
//! the site's own (loaded in the model panel), or the seeded untrained
//! network, and the page says which next to every number.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::compute::{Backend, Compute};
use super::job::{Finished, Job, ModelChoice};
use super::models::Models;
use super::result::{DiagnosisReport, DiagnosisView, MIB, Memory};
use super::self_check::SELF_CHECK_SEED;
use super::wasm_memory_bytes;
use super::worker_client::{Cancel, JobError, run_job};
use crate::pipeline::{Diagnosis, Stage};
use crate::volume::Volume;

/// The caveat a result of `model` carries.
fn caveat(model: &ModelChoice) -> Option<String> {
    match model {
        ModelChoice::Seeded(_) => Some(
            "Untrained network with random weights: this probability means nothing.".to_owned(),
        ),
        ModelChoice::Trained(card) if card.training_data.synthetic => Some(
            "Synthetic-data weights (trained on phantoms): this demonstrates the software; \
             it is not a diagnosis of a patient."
                .to_owned(),
        ),
        ModelChoice::Trained(_) => None,
    }
}

/// Runs `job` in the compute worker; `on_stage` hears each stage's label.
/// When WebGPU fails (the worker died, or the backend failed while
/// computing), the job runs again on the CPU, and the report says why.
async fn diagnose_in_worker(
    mut job: Job,
    on_stage: impl FnMut(String) + Clone + 'static,
    cancel: &Cancel,
) -> Result<(DiagnosisReport, Diagnosis), JobError> {
    let mut fallback = None;
    let outcome = match run_job(&job, on_stage.clone(), cancel).await {
        Err(e @ (JobError::Died(_) | JobError::Failed { backend: true, .. }))
            if job.backend == Backend::WebGpu =>
        {
            fallback = Some(format!("WebGPU failed ({e}); ran again on the CPU"));
            job.backend = Backend::Cpu;
            run_job(&job, on_stage, cancel).await
        }
        outcome => outcome,
    };
    let Finished {
        diagnosis,
        model,
        worker_memory_bytes,
        helper_memory_bytes,
    } = outcome?;
    let report = DiagnosisReport {
        backend: job.backend.label(),
        fallback,
        model,
        caveat: caveat(&job.model),
        diagnosis: diagnosis.summary.clone(),
        memory_mib: Memory {
            page: wasm_memory_bytes() / MIB,
            worker: worker_memory_bytes / MIB,
            helper: helper_memory_bytes.map(|bytes| bytes / MIB),
        },
    };
    Ok((report, diagnosis))
}

/// Where the current run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Nothing has run yet: the backend or the bundled model is not known yet.
    Waiting,
    /// The worker is starting.
    Starting,
    /// Stage `n` of [`Stage::ALL`] is running.
    Stage(usize),
    /// The run ended (its result or error is shown).
    Ended,
}

/// A finished run: its number, the network it ran, and its result.
#[derive(Clone)]
struct Outcome {
    run: u32,
    choice: String,
    result: Result<(DiagnosisReport, Rc<Diagnosis>), String>,
}

/// The diagnosis panel for `volume`.
#[component]
pub fn DiagnosePanel(
    /// The CT on screen.
    volume: Rc<Volume>,
    /// The page's backend, once chosen.
    compute: LocalResource<Compute>,
    /// The trained models the page has.
    models: Models,
    /// The network the user picked, if any (else the default one).
    picked: RwSignal<Option<String>>,
    /// Receives each new diagnosis (for the viewer's overlay).
    set_diagnosis: WriteSignal<Option<Rc<Diagnosis>>, LocalStorage>,
) -> impl IntoView {
    let volume = StoredValue::new_local(volume);
    let status = RwSignal::new(Status::Waiting);
    let outcome = RwSignal::new_local(None::<Outcome>);
    let runs = RwSignal::new(0u32);
    let cancel = StoredValue::new_local(Cancel::default());
    on_cleanup(move || cancel.with_value(Cancel::cancel));
    let choice = move || models.choice(picked.get());
    let running = move || matches!(status.get(), Status::Starting | Status::Stage(_));

    let start = move || {
        let Some(compute) = compute.get_untracked() else {
            return;
        };
        let choice = untrack(choice);
        let Some((model, weights)) = untrack(|| models.job_model(&choice)) else {
            return;
        };
        // A newer run replaces an older one.
        cancel.with_value(Cancel::cancel);
        let handle = Cancel::default();
        cancel.set_value(handle.clone());
        let run = runs.get_untracked() + 1;
        runs.set(run);
        status.set(Status::Starting);
        outcome.set(None);
        set_diagnosis.set(None);
        let job = Job {
            backend: compute.backend,
            model,
            weights,
            volume: volume.get_value(),
        };
        let current = move || runs.try_get_untracked() == Some(run);
        let on_stage = move |label: String| {
            if current()
                && let Some(n) = Stage::ALL.iter().position(|s| s.label() == label)
            {
                status.set(Status::Stage(n));
            }
        };
        spawn_local(async move {
            let result = match diagnose_in_worker(job, on_stage, &handle).await {
                Err(JobError::Cancelled) => return,
                result => result,
            };
            if !current() {
                return;
            }
            let result = result
                .map(|(report, diagnosis)| (report, Rc::new(diagnosis)))
                .map_err(|e| e.to_string());
            if let Ok((_, diagnosis)) = &result {
                set_diagnosis.set(Some(Rc::clone(diagnosis)));
            }
            outcome.set(Some(Outcome {
                run,
                choice,
                result,
            }));
            status.set(Status::Ended);
        });
    };
    // Runs by itself once the backend and the bundled model are known, and
    // again when another network (or another model file) is chosen.
    Effect::new(move |last: Option<Option<String>>| {
        let last = last.flatten();
        let ready = compute.get().is_some() && models.bundled_known();
        let choice = choice();
        let weights = models.trained(&choice).map(|m| m.card.weights.sha256);
        let key = format!("{choice} {}", weights.unwrap_or_default());
        if ready && last.as_ref() != Some(&key) {
            untrack(start);
            Some(key)
        } else {
            last
        }
    });

    view! {
        <section class="panel diagnose" aria-labelledby="diagnose-title">
            <h2 id="diagnose-title">"Diagnosis"</h2>
            <div class="row model-row">
                <label for="diagnose-preset">"Network"</label>
                <NetworkMenu models picked choice=Signal::derive(choice) />
            </div>
            {move || match models.trained(&choice()) {
                Some(m) => view! {
                    <p class="note">{format!("{} {}, trained on {}{}.", m.card.name, m.card.version,
                        m.card.training_data.description,
                        if m.card.training_data.synthetic { " (synthetic)" } else { "" })}</p>
                }.into_any(),
                None => view! {
                    <p class="note">
                        "An untrained network with random weights (seed " {SELF_CHECK_SEED}
                        "): it shows the pipeline working; its probability means nothing."
                    </p>
                }.into_any(),
            }}
            <div class="row">
                <button class="primary" data-testid="diagnose"
                    title="Runs the diagnosis of this series again"
                    aria-disabled=move || (running() || compute.get().is_none()).to_string()
                    on:click=move |_| if !untrack(running) { start() }>
                    "Diagnose"
                </button>
                {move || match status.get() {
                    Status::Waiting => Some(view! {
                        <span role="status" class="note">"Waiting for the compute backend…"</span>
                    }.into_any()),
                    Status::Starting | Status::Stage(_) => Some(view! {
                        <span role="status" data-testid="progress">{move || match status.get() {
                            Status::Stage(n) => format!("Running: {}…", Stage::ALL[n].label()),
                            _ => "Starting the compute worker…".to_owned(),
                        }}</span>
                    }.into_any()),
                    Status::Ended => None,
                }}
            </div>
            <Show when=running>
                <StageList status />
            </Show>
            {move || outcome.get().map(|Outcome { run, choice, result }| match result {
                Ok((report, diagnosis)) => view! {
                    <DiagnosisView report diagnosis volume=volume.get_value() run choice />
                }.into_any(),
                Err(message) => view! {
                    <p class="error" role="alert" data-testid="diagnosis-error" data-run=run
                        data-preset=choice>{message}</p>
                }.into_any(),
            })}
        </section>
    }
}

/// The menu of networks: the bundled model, the untrained ones (only while
/// the page has no usable default model), the site's own.
#[component]
fn NetworkMenu(
    /// The trained models the page has.
    models: Models,
    /// Set to the user's pick.
    picked: RwSignal<Option<String>>,
    /// The network chosen now.
    choice: Signal<String>,
) -> impl IntoView {
    let offered = move || models.untrained_offered();
    let is = move |value: &'static str| move || choice.get() == value;
    view! {
        <select id="diagnose-preset" data-testid="diagnose-preset"
            on:change=move |ev| picked.set(Some(event_target_value(&ev)))>
            <option value="bundled" prop:selected=is("bundled")
                disabled=move || models.bundled_model().is_none()>
                {move || models.bundled_model().map_or_else(
                    || "default model (none ships with this page)".to_owned(),
                    |m| format!("default model: {} {}", m.card.name, m.card.version))}
            </option>
            <option value="web-default" prop:selected=is("web-default")
                hidden=move || !offered() disabled=move || !offered()>
                "web default, untrained (ResNet-34, 64x128x128)"
            </option>
            <option value="tiny" prop:selected=is("tiny")
                hidden=move || !offered() disabled=move || !offered()>
                "tiny, untrained (quick check)"
            </option>
            <option value="own" prop:selected=is("own") disabled=move || models.own.get().is_none()>
                {move || models.own.get().map_or_else(
                    || "your model (load one under About this model)".to_owned(),
                    |m| format!("your model: {} {}", m.card.name, m.card.version))}
            </option>
        </select>
    }
}

/// The stages of the pipeline, each done, running or to come.
#[component]
fn StageList(
    /// Where the run is.
    status: RwSignal<Status>,
) -> impl IntoView {
    let items = Stage::ALL
        .iter()
        .enumerate()
        .map(|(n, stage)| {
            let state = move || match status.get() {
                Status::Stage(current) if n < current => "done",
                Status::Stage(current) if n == current => "active",
                _ => "todo",
            };
            view! { <li class=state data-state=state>{stage.label()}</li> }
        })
        .collect_view();
    view! { <ol class="stages" data-testid="stage-progress" aria-label="Stages">{items}</ol> }
}
