//! What the opened files hold: the series picker (a series that cannot be
//! shown is listed with the reason), the files that were skipped and why
//! (folded away, one click from view), and the volume on screen with what
//! assembling it noticed.

use leptos::prelude::*;

use super::study::{Loaded, Study};
use crate::dicom::StudyReport;

/// The series picker and the skipped files of what is open.
#[component]
pub fn StudyView(
    /// What is open.
    study: Study,
    /// Whether the list of skipped files starts unfolded.
    skipped_open: bool,
) -> impl IntoView {
    move || {
        study
            .report
            .get()
            .map(|report| view! { <ReportView report study skipped_open /> })
    }
}

#[component]
fn ReportView(report: StudyReport, study: Study, skipped_open: bool) -> impl IntoView {
    let json = serde_json::to_string(&report).unwrap_or_default();
    let selected = study.selected;
    let rows = report
        .series
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let summary = &s.summary;
            let spacing = summary
                .slice_spacing
                .map(|z| format!("{z:.2} mm"))
                .unwrap_or_else(|| "–".to_owned());
            let disabled = summary.unusable.is_some();
            let note = summary.unusable.clone().unwrap_or_else(|| {
                if s.default {
                    "default".to_owned()
                } else {
                    String::new()
                }
            });
            let number = summary
                .series_number
                .map(|n| format!("No. {n} · "))
                .unwrap_or_default();
            let kernel = if summary.kernel.is_empty() {
                String::new()
            } else {
                format!(" · {}", summary.kernel)
            };
            let details = format!(
                "{number}{}{kernel} · {:.0} MB",
                summary.modality,
                summary.volume_bytes as f64 / 1e6
            );
            view! {
                <tr class:unusable=disabled>
                    <td>
                        <input type="radio" name="series" aria-label=format!("series {}", index + 1)
                            disabled=disabled
                            prop:checked=move || selected.get() == Some(index)
                            on:change=move |_| study.choose(index) />
                    </td>
                    <td>{summary.description.clone()}<br /><small>{details}</small></td>
                    <td>
                        {format!("{} × {}x{}", summary.slices, summary.image_size[0], summary.image_size[1])}
                        <br /><small>{spacing}</small>
                    </td>
                    <td>{note}</td>
                </tr>
            }
        })
        .collect_view();
    let skipped = report.skipped;
    let count = skipped.len();
    view! {
        <table class="series" data-testid="series-picker">
            <caption>{format!("Series found: {}", report.series.len())}</caption>
            <thead><tr>
                <th scope="col">"Show"</th><th scope="col">"Series"</th>
                <th scope="col">"Slices × matrix"</th><th scope="col">"Note"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
        <Show when=move || count != 0>
            <details class="skipped" open=skipped_open>
                <summary>{format!("{count} file(s) skipped: why")}</summary>
                <ul data-testid="error-list">
                    {skipped.iter().map(|e| view! { <li>{e.clone()}</li> }).collect_view()}
                </ul>
            </details>
        </Show>
        {move || study.read_ms.get().map(|ms| view! {
            <p class="note" data-testid="read-time" data-ms=ms>{format!("Read in {ms:.0} ms")}</p>
        })}
        <pre data-testid="study-json" hidden>{json}</pre>
    }
}

/// The side panel's section on the open CT.
#[component]
pub fn SeriesPanel(
    /// The volume on screen.
    loaded: std::rc::Rc<Loaded>,
    /// What is open.
    study: Study,
) -> impl IntoView {
    let [depth, rows, columns] = loaded.volume.dims();
    let [dz, dy, dx] = loaded.volume.spacing();
    view! {
        <section class="panel series-panel" aria-labelledby="series-title">
            <h2 id="series-title">"Series"</h2>
            <p data-testid="volume-info" data-assemble-ms=loaded.assemble_ms>
                {format!("{}: {depth} slices of {rows}x{columns}, voxel {dx:.3} x {dy:.3} x {dz:.3} mm", loaded.label)}
            </p>
            <ul class="warnings">
                {loaded.warnings.iter().map(|w| view! { <li>{w.clone()}</li> }).collect_view()}
            </ul>
            <StudyView study skipped_open=false />
        </section>
    }
}
