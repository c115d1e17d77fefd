//! The result card of a diagnosis: the probability beside its key image (the
//! axial slice through the middle of the lungs with the attention inside the
//! lungs), the decision and its threshold, what the weights are (the model
//! card's caveat), the branches' probabilities, the lung figures, where it
//! ran and how long each stage took; and its downloads, made in the page: the
//! result as JSON and a PNG report (the key image beside the figures).

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Serialize;

use super::export::{download_png, download_text};
use super::put_rgba;
use crate::pipeline::{Diagnosis, DiagnosisSummary, LUNG_REGION_MARGIN_MM};
use crate::volume::Volume;

/// What the page shows and the browser tests read.
#[derive(Debug, Clone, Serialize)]
pub struct DiagnosisReport {
    /// The backend that ran it.
    pub backend: &'static str,
    /// Why the CPU ran a diagnosis meant for WebGPU, if it did.
    pub fallback: Option<String>,
    /// The model card's name.
    pub model: String,
    /// What the probability is not: said beside it wherever it is shown.
    pub caveat: Option<String>,
    /// The pipeline's figures.
    pub diagnosis: DiagnosisSummary,
    /// The WebAssembly memory of the page and of the workers when the
    /// result came.
    pub memory_mib: Memory,
}

/// WebAssembly memory, MiB: the high-water mark of a heap (wasm memory grows
/// and never shrinks).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Memory {
    /// The page's.
    pub page: f64,
    /// The compute worker's, at the end of the job.
    pub worker: f64,
    /// The helper worker's (branch B on a second core), when one ran.
    pub helper: Option<f64>,
}

/// Bytes per MiB.
pub const MIB: f64 = 1_048_576.0;

/// Width of the report picture and of its CT image, pixels.
const REPORT_WIDTH: u32 = 1024;
const REPORT_IMAGE: u32 = 512;
/// Characters per line of the report's text (16 px sans-serif beside the image).
const REPORT_LINE: usize = 56;

/// `line` broken at spaces into lines of at most `width` characters (a
/// longer word stays whole).
fn wrap(line: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in line.split(' ') {
        let current = lines.last_mut().map_or(0, |l| l.chars().count());
        if current > 0 && current + 1 + word.chars().count() > width {
            lines.push(String::new());
        }
        if let Some(last) = lines.last_mut() {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

/// The result card.
#[component]
pub fn DiagnosisView(
    /// The figures.
    report: DiagnosisReport,
    /// The maps.
    diagnosis: Rc<Diagnosis>,
    /// The CT it was made from.
    volume: Rc<Volume>,
    /// The run's number (1 for the first of this CT).
    run: u32,
    /// The network's menu value.
    choice: String,
) -> impl IntoView {
    let s = report.diagnosis.clone();
    let json = serde_json::to_string(&report).unwrap_or_default();
    let export_json = serde_json::to_string_pretty(&report).unwrap_or_default();
    let (export_error, set_export_error) = signal(None::<String>);
    let positive_probability = s.positive_probability;
    let probability = positive_probability.map_or_else(|| "–".to_owned(), |p| format!("{p:.4}"));
    let positive = s
        .positive_class
        .map(|c| s.classes[c].clone())
        .unwrap_or_default();
    let threshold = s.decision.threshold;
    let timings = s
        .timings
        .iter()
        .map(|t| format!("{} {:.0} ms", t.stage.label(), t.ms))
        .collect::<Vec<_>>()
        .join(", ");
    let branch = |p: &[f32]| s.positive_class.map_or(f32::NAN, |c| p[c]);
    let decision = format!("{} (threshold {threshold:.2})", s.predicted_class);
    // The result's figures, shown on the page and written into the PNG report.
    let figures: Vec<(&str, String)> = vec![
        (
            "Branches U / B",
            format!(
                "{:.4} / {:.4}",
                branch(&s.uniform_probabilities),
                branch(&s.balanced_probabilities)
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
        .chain([
            format!("Probability of {positive}: {probability}"),
            format!("Decision: {decision}"),
        ])
        .chain(report.caveat.clone())
        .chain(
            figures
                .iter()
                .map(|(label, value)| format!("{label}: {value}")),
        )
        .chain([
            format!("Attention drawn inside the lungs grown by {LUNG_REGION_MARGIN_MM:.0} mm."),
            "Made in this browser; nothing was uploaded.".to_owned(),
            "Research software, not a medical device.".to_owned(),
        ])
        .flat_map(|line| wrap(&line, REPORT_LINE))
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
    let fill = positive_probability.map_or(0.0, |p| 100.0 * p.clamp(0.0, 1.0));
    view! {
        <div class="result" data-testid="result-card">
            <div class="result-head">
                <canvas node_ref=canvas class="key-image" data-testid="overlay-canvas"
                    width=columns height=rows
                    aria-label=format!("attention inside the lungs over axial slice {} (the middle of the lungs)", k + 1)
                    style=format!("aspect-ratio: {} / {}", columns as f64 * dx, rows as f64 * dy)></canvas>
                <div class="verdict">
                    <p class="probability-label">{format!("Probability of {positive}")}</p>
                    <p class="probability" data-testid="result-probability">{probability}</p>
                    <div class="meter" aria-hidden="true">
                        <span class="fill" style:width=format!("{fill:.1}%")></span>
                        <span class="threshold" style:left=format!("{:.1}%", 100.0 * threshold.clamp(0.0, 1.0))></span>
                    </div>
                    <p class="decision">{decision}</p>
                </div>
            </div>
            {report.caveat.clone().map(|c| view! { <p class="warning caveat" data-testid="result-caveat">{c}</p> })}
            <dl class="figures" data-testid="diagnosis-result"
                title="Branch U: trained on uniformly drawn cases; branch B: on cases drawn balanced by infection size">
                {figures.into_iter().map(|(label, value)| view! { <dt>{label}</dt><dd>{value}</dd> }).collect_view()}
                <dt>"Stages"</dt><dd data-testid="stage-timings">{timings}</dd>
            </dl>
            <div class="row exports">
                <button data-testid="export-json" on:click=move |_| {
                    set_export_error.set(download_text("dsan-ct-result.json", "application/json", &export_json).err());
                }>"Result (JSON)"</button>
                <button data-testid="export-png" on:click=export_png>"Report (PNG)"</button>
                <span class="note">"Made in this browser; nothing is uploaded."</span>
            </div>
            {move || export_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <p class="warning">"Research software, not a medical device."</p>
            <pre data-testid="diagnosis-json" data-run=run data-preset=choice hidden>{json}</pre>
        </div>
    }
}

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

/// Axial slice `k` with the overlay of [`Diagnosis::axial_overlay`].
fn draw_overlay(
    canvas: &web_sys::HtmlCanvasElement,
    volume: &Volume,
    diagnosis: &Diagnosis,
    k: usize,
) {
    let [_, rows, columns] = volume.dims();
    if let Some(rgba) = diagnosis.axial_overlay(volume, k) {
        put_rgba(canvas, &rgba, columns, rows);
    }
}
