//! The diagnosis panel: runs the library's pipeline on the volume on screen,
//! with stage-by-stage progress, on the page's backend (WebGPU or CPU), and
//! shows the probability, the timings and the attention over the CT.
//!
//! The model is the one bundled with the page (the default when one ships),
//! the site's own (loaded in the model panel), or the seeded untrained
//! network, and the page says which next to every number.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Serialize;

use super::compute::{Backend, Compute};
use super::export::{download_png, download_text};
use super::job::{Job, ModelChoice};
use super::models::{LoadedModel, Models};
use super::put_rgba;
use super::self_check::{Preset, SELF_CHECK_SEED};
use super::worker_client::{JobError, run_job};
use crate::pipeline::{Diagnosis, DiagnosisSummary};
use crate::render::{OverlayStyle, Window, axial_rgba, blend_attention, mask_outline};
use crate::volume::Volume;

/// What the page shows and the browser tests read.
#[derive(Debug, Clone, Serialize)]
struct DiagnosisReport {
    backend: &'static str,
    /// Why the CPU ran a diagnosis meant for WebGPU, if it did.
    fallback: Option<String>,
    model: String,
    /// What the probability is not: said beside it wherever it is shown.
    caveat: Option<String>,
    diagnosis: DiagnosisSummary,
}

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

/// Runs `job` in the compute worker, showing each stage in `progress`. When
/// WebGPU fails (the worker died, or the backend failed while computing), the
/// job runs again on the CPU, and the report says why.
async fn run(
    mut job: Job,
    progress: WriteSignal<Option<String>>,
) -> Result<(DiagnosisReport, Diagnosis), String> {
    let on_stage = move |label: String| progress.set(Some(format!("Running: {label}…")));
    let mut fallback = None;
    let outcome = match run_job(&job, on_stage).await {
        Err(e @ (JobError::Died(_) | JobError::Failed { backend: true, .. }))
            if job.backend == Backend::WebGpu =>
        {
            fallback = Some(format!("WebGPU failed ({e}); ran again on the CPU"));
            job.backend = Backend::Cpu;
            run_job(&job, on_stage).await
        }
        outcome => outcome,
    };
    let (diagnosis, model) = outcome.map_err(|e| e.to_string())?;
    let report = DiagnosisReport {
        backend: job.backend.label(),
        fallback,
        model,
        caveat: caveat(&job.model),
        diagnosis: diagnosis.summary.clone(),
    };
    Ok((report, diagnosis))
}

/// The diagnosis panel for `volume`.
#[component]
pub fn DiagnosePanel(
    /// The CT on screen.
    volume: Volume,
    /// The page's backend, once chosen.
    compute: LocalResource<Compute>,
    /// The trained models the page has.
    models: Models,
    /// Receives each new diagnosis (for the viewer's overlay).
    set_diagnosis: WriteSignal<Option<Rc<Diagnosis>>, LocalStorage>,
) -> impl IntoView {
    let volume = StoredValue::new_local(volume);
    let (running, set_running) = signal(false);
    let (progress, set_progress) = signal(None::<String>);
    let (result, set_result) =
        signal_local(None::<Result<(DiagnosisReport, Rc<Diagnosis>), String>>);
    // The bundled model when one ships, the untrained network otherwise. The
    // untrained networks are offered only while the page has no usable
    // default model (it may arrive after the panel is built).
    let no_default = move || !matches!(models.bundled.get(), None | Some(Ok(Some(_))));
    let initial = if untrack(|| models.bundled_model()).is_some() {
        "bundled"
    } else {
        "web-default"
    };
    let (preset, set_preset) = signal(initial.to_owned());
    Effect::new(move || {
        if models.bundled_model().is_some() && untrack(|| preset.get()) == "web-default" {
            set_preset.set("bundled".to_owned());
        }
    });
    // The trained model the choice names, if it is one (tracked).
    let trained = move |choice: &str| -> Option<LoadedModel> {
        match choice {
            "bundled" => models.bundled_model(),
            "own" => models.own.get(),
            _ => None,
        }
    };

    let start = move |_| {
        let Some(compute) = compute.get_untracked() else {
            return;
        };
        let choice = preset.get_untracked();
        let (model, weights) = match choice.as_str() {
            "bundled" | "own" => match untrack(|| trained(&choice)) {
                Some(model) => (ModelChoice::Trained(Box::new(model.card)), model.bytes),
                None => return,
            },
            untrained => (
                ModelChoice::Seeded(Preset::from_name(untrained).config()),
                Rc::default(),
            ),
        };
        set_running.set(true);
        set_result.set(None);
        set_diagnosis.set(None);
        set_progress.set(Some("Starting the compute worker…".to_owned()));
        spawn_local(async move {
            let job = Job {
                backend: compute.backend,
                model,
                weights,
                volume: volume.get_value(),
            };
            let outcome = run(job, set_progress).await;
            set_progress.set(None);
            let outcome = outcome.map(|(report, diagnosis)| (report, Rc::new(diagnosis)));
            if let Ok((_, diagnosis)) = &outcome {
                set_diagnosis.set(Some(Rc::clone(diagnosis)));
            }
            set_result.set(Some(outcome));
            set_running.set(false);
        });
    };

    view! {
        <section class="diagnose" aria-labelledby="diagnose-title">
            <h3 id="diagnose-title">"Diagnosis"</h3>
            {move || match trained(&preset.get()) {
                Some(m) => view! {
                    <p class="warning">{format!("Model: {} {}. {} Not a medical device.",
                        m.card.name, m.card.version, m.card.limitations)}</p>
                }.into_any(),
                None => view! {
                    <p class="warning">
                        "This runs an untrained network with random weights (seed " {SELF_CHECK_SEED}
                        "). Its probability means nothing; it shows the pipeline working. "
                        "Not a medical device."
                    </p>
                }.into_any(),
            }}
            <label for="diagnose-preset">"Network "</label>
            <select id="diagnose-preset" data-testid="diagnose-preset"
                prop:value=move || preset.get()
                on:change=move |ev| set_preset.set(event_target_value(&ev))>
                <option value="bundled" selected=initial == "bundled"
                    disabled=move || models.bundled_model().is_none()>
                    {move || models.bundled_model().map_or_else(
                        || "default model (none ships with this page)".to_owned(),
                        |m| format!("default model: {} {}", m.card.name, m.card.version))}
                </option>
                <option value="web-default" selected=initial == "web-default"
                    hidden=move || !no_default() disabled=move || !no_default()>
                    "web default, untrained (ResNet-34, 64x128x128)"
                </option>
                <option value="tiny" hidden=move || !no_default() disabled=move || !no_default()>
                    "tiny, untrained (quick check)"
                </option>
                <option value="own" disabled=move || models.own.get().is_none()>
                    {move || models.own.get().map_or_else(
                        || "your model (load one in the model panel)".to_owned(),
                        |m| format!("your model: {} {}", m.card.name, m.card.version))}
                </option>
            </select>
            " "
            <button data-testid="diagnose" on:click=start
                disabled=move || running.get() || compute.get().is_none()>
                "Diagnose"
            </button>
            {move || progress.get().map(|p| view! { <p role="status" data-testid="progress">{p}</p> })}
            {move || result.get().map(|outcome| match outcome {
                Ok((report, diagnosis)) => {
                    view! { <DiagnosisView report diagnosis volume=volume.get_value() /> }.into_any()
                }
                Err(message) => view! {
                    <p class="error" role="alert" data-testid="diagnosis-error">{message}</p>
                }.into_any(),
            })}
        </section>
    }
}

/// The result: probabilities, decision, lung figures, timings and the overlay.
#[component]
fn DiagnosisView(
    report: DiagnosisReport,
    diagnosis: Rc<Diagnosis>,
    volume: Volume,
) -> impl IntoView {
    let s = report.diagnosis.clone();
    let json = serde_json::to_string(&report).unwrap_or_default();
    let export_json = serde_json::to_string_pretty(&report).unwrap_or_default();
    let (export_error, set_export_error) = signal(None::<String>);
    let probability = s
        .positive_probability
        .map_or_else(|| "–".to_owned(), |p| format!("{p:.4}"));
    let positive = s
        .positive_class
        .map(|c| s.classes[c].clone())
        .unwrap_or_default();
    let timings = s
        .timings
        .iter()
        .map(|t| format!("{} {:.0} ms", t.stage.label(), t.ms))
        .collect::<Vec<_>>()
        .join(", ");
    // The result's figures, shown on the page and written into the PNG report.
    let figures: Vec<(&str, String)> = vec![
        (
            "Branches (uniform / size-balanced)",
            format!(
                "{:.4} / {:.4}",
                s.positive_class
                    .map_or(f32::NAN, |c| s.uniform_probabilities[c]),
                s.positive_class
                    .map_or(f32::NAN, |c| s.balanced_probabilities[c])
            ),
        ),
        (
            "Decision",
            format!(
                "{} (threshold {:.2})",
                s.predicted_class, s.decision.threshold
            ),
        ),
        (
            "Lungs",
            format!(
                "{:.0} mL; {:.1}% with high attention",
                s.lung_volume_ml,
                100.0 * s.high_attention_fraction
            ),
        ),
        ("Model", report.model.clone()),
        (
            "Ran on",
            report.fallback.as_ref().map_or_else(
                || report.backend.to_owned(),
                |why| format!("{} ({why})", report.backend),
            ),
        ),
    ];
    let lines: Vec<String> = ["DSAN-CT diagnosis report".to_owned()]
        .into_iter()
        .chain(std::iter::once(format!(
            "Probability of {positive}: {probability}"
        )))
        .chain(report.caveat.clone())
        .chain(
            figures
                .iter()
                .map(|(label, value)| format!("{label}: {value}")),
        )
        .chain([
            "Made in this browser; nothing was uploaded.".to_owned(),
            "Research software, not a medical device.".to_owned(),
        ])
        .collect();
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    let [_, rows, columns] = volume.dims();
    let [_, dy, dx] = volume.spacing();
    let image_aspect = (rows as f64 * dy) / (columns as f64 * dx);
    let export_png = move |_| {
        let Some(overlay) = canvas.get_untracked() else {
            return;
        };
        let lines = lines.clone();
        spawn_local(async move {
            let outcome = match report_canvas(&overlay, image_aspect, &lines) {
                Ok(page) => download_png("dsan-ct-report.png", &page).await,
                Err(e) => Err(e),
            };
            set_export_error.set(outcome.err());
        });
    };
    // The slice through the middle of the lungs.
    let k = diagnosis
        .lung_mask
        .bounds()
        .map_or(volume.dims()[0] / 2, |[lo, hi]| (lo[0] + hi[0]) / 2);
    Effect::new(move |_| {
        if let Some(canvas) = canvas.get() {
            draw_overlay(&canvas, &volume, &diagnosis, k);
        }
    });
    view! {
        <dl data-testid="diagnosis-result">
            <dt>{format!("Probability of {positive}")}</dt>
            <dd data-testid="result-probability">{probability}</dd>
            {report.caveat.clone().map(|c| view! { <dd class="warning" data-testid="result-caveat">{c}</dd> })}
            {figures.into_iter().map(|(label, value)| view! { <dt>{label}</dt><dd>{value}</dd> }).collect_view()}
            <dt>"Stages"</dt><dd data-testid="stage-timings">{timings}</dd>
        </dl>
        <canvas node_ref=canvas data-testid="overlay-canvas" width=columns height=rows
            aria-label="attention over the axial slice through the middle of the lungs"
            style=format!("aspect-ratio: {} / {}", columns as f64 * dx, rows as f64 * dy)></canvas>
        <p>
            <button data-testid="export-json" on:click=move |_| {
                set_export_error.set(download_text("dsan-ct-result.json", "application/json", &export_json).err());
            }>"Download the result (JSON)"</button>
            " "
            <button data-testid="export-png" on:click=export_png>"Download a report (PNG)"</button>
            " Made in this browser; nothing is uploaded."
        </p>
        {move || export_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        <pre data-testid="diagnosis-json" hidden>{json}</pre>
    }
}

/// Width of the report picture and of its CT image, pixels.
const REPORT_WIDTH: u32 = 1024;
const REPORT_IMAGE: u32 = 512;

/// The report picture: the overlay image (at its physical aspect, `height /
/// width` = `image_aspect`) beside the result's lines of text.
fn report_canvas(
    overlay: &web_sys::HtmlCanvasElement,
    image_aspect: f64,
    lines: &[String],
) -> Result<web_sys::HtmlCanvasElement, String> {
    use wasm_bindgen::JsCast;
    let fail = |what: &str| format!("making the report: {what}");
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| fail("no document"))?;
    let page: web_sys::HtmlCanvasElement = document
        .create_element("canvas")
        .map_err(|_| fail("no canvas"))?
        .dyn_into()
        .map_err(|_| fail("no canvas"))?;
    let image_height = (f64::from(REPORT_IMAGE) * image_aspect).round();
    let text_height = 40.0 + 28.0 * lines.len() as f64;
    page.set_width(REPORT_WIDTH);
    page.set_height(image_height.max(text_height).ceil() as u32 + 32);
    let context: web_sys::CanvasRenderingContext2d = page
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into().ok())
        .ok_or_else(|| fail("no 2D context"))?;
    context.set_fill_style_str("#ffffff");
    context.fill_rect(0.0, 0.0, f64::from(page.width()), f64::from(page.height()));
    context
        .draw_image_with_html_canvas_element_and_dw_and_dh(
            overlay,
            16.0,
            16.0,
            f64::from(REPORT_IMAGE),
            image_height,
        )
        .map_err(|_| fail("drawing the image"))?;
    context.set_fill_style_str("#111111");
    for (n, line) in lines.iter().enumerate() {
        context.set_font(if n == 0 {
            "bold 22px sans-serif"
        } else {
            "16px sans-serif"
        });
        let x = f64::from(REPORT_IMAGE) + 40.0;
        context
            .fill_text(line, x, 44.0 + 28.0 * n as f64)
            .map_err(|_| fail("writing the text"))?;
    }
    Ok(page)
}

fn draw_overlay(
    canvas: &web_sys::HtmlCanvasElement,
    volume: &Volume,
    diagnosis: &Diagnosis,
    k: usize,
) {
    let [_, rows, columns] = volume.dims();
    let plane = rows * columns;
    let Some(mut rgba) = axial_rgba(volume, k, Window::LUNG) else {
        return;
    };
    let outline = mask_outline(
        &diagnosis.lung_mask.data()[k * plane..(k + 1) * plane],
        rows,
        columns,
    );
    blend_attention(
        &mut rgba,
        &diagnosis.attention.ensemble[k * plane..(k + 1) * plane],
        OverlayStyle::default(),
        Some(&outline),
    );
    put_rgba(canvas, &rgba, columns, rows);
}
