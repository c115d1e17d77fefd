//! Opening a CT: files, a folder or a .zip are read in the browser (nothing is
//! uploaded), or a sample case is fetched from this site, grouped into series, and the chosen series is assembled into a
//! volume and shown (one axial slice, lung window), ready for diagnosis.

use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::{File, FileSystemEntry};

use super::compute::Compute;
use super::diagnose::DiagnosePanel;
use super::drop::{dropped_entries, entry_files};
use super::models::Models;
use super::viewer::Viewer;
use super::{fetch_bytes, file_bytes, input_files, now_ms};
use crate::dicom::{Study, StudyReader, StudyReport, assemble};
use crate::volume::Volume;

/// The volume on screen and what was noticed while assembling it.
#[derive(Debug, Clone)]
struct Loaded {
    volume: Volume,
    warnings: Vec<String>,
    label: String,
    /// Time to sort and assemble the series, ms.
    assemble_ms: f64,
}

/// The series a drop produced; the chosen one's slices move into the volume.
#[derive(Default)]
struct DropState {
    study: Option<Study>,
}

/// Longest stretch of work between two chances for the page to repaint.
const YIELD_EVERY_MS: f64 = 50.0;

/// The sample cases shipped in `public/samples/` (synthetic phantoms made by
/// `tests/make_samples.sh`): file name and label.
const SAMPLES: [(&str, &str); 4] = [
    ("covid-19-like-1.zip", "COVID-19-like phantom 1"),
    ("covid-19-like-2.zip", "COVID-19-like phantom 2"),
    ("cap-like-1.zip", "CAP-like phantom 1"),
    ("cap-like-2.zip", "CAP-like phantom 2"),
];

/// What the user opened.
enum Opened {
    /// Files (or a folder's files) picked in an input.
    Files(Vec<File>),
    /// Files and folders dropped on the drop zone.
    Dropped(Vec<FileSystemEntry>),
    /// A sample case, fetched from this site.
    Sample(&'static str),
}

fn display_name(file: &File) -> String {
    // `webkitRelativePath` (folder inputs) is not in web-sys' File binding.
    js_sys::Reflect::get(file, &"webkitRelativePath".into())
        .ok()
        .and_then(|v| v.as_string())
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| file.name())
}

/// The "open a CT" panel: inputs, progress, series picker, skipped files,
/// and the assembled volume.
#[component]
pub fn StudyPanel(
    /// The page's backend, once chosen.
    compute: LocalResource<Compute>,
    /// The trained models the page has.
    models: Models,
) -> impl IntoView {
    let state = StoredValue::new(DropState::default());
    let (progress, set_progress) = signal(None::<String>);
    let (report, set_report) = signal(None::<StudyReport>);
    let (selected, set_selected) = signal(None::<usize>);
    let (loaded, set_loaded) = signal(None::<Result<Loaded, String>>);
    let (read_ms, set_read_ms) = signal(None::<f64>);

    let choose = move |index: usize| {
        set_selected.set(Some(index));
        let series = state.try_update_value(|s| {
            s.study.as_mut().and_then(|study| {
                let series = study.series.get_mut(index)?;
                (!series.slices.is_empty()).then(|| series.take_slices())
            })
        });
        let started = now_ms();
        let outcome = match series.flatten() {
            Some(series) => {
                let label = series.summary.description.clone();
                assemble(series)
                    .map(|a| Loaded {
                        volume: a.volume,
                        warnings: a.warnings,
                        label,
                        assemble_ms: now_ms() - started,
                    })
                    .map_err(|e| e.to_string())
            }
            None => Err(
                "this series was released from memory; open the files again to view it".to_owned(),
            ),
        };
        set_loaded.set(Some(outcome));
    };

    let open = move |opened: Opened| {
        set_report.set(None);
        set_loaded.set(None);
        set_selected.set(None);
        spawn_local(async move {
            let mut reader = StudyReader::default();
            let started = now_ms();
            let files = match opened {
                Opened::Files(files) => files
                    .into_iter()
                    .map(|file| (display_name(&file), file))
                    .collect(),
                Opened::Dropped(entries) => {
                    set_progress.set(Some("Listing the dropped files…".to_owned()));
                    match entry_files(entries).await {
                        Ok(files) => files,
                        Err(message) => {
                            set_progress.set(Some(message));
                            return;
                        }
                    }
                }
                Opened::Sample(file) => {
                    set_progress.set(Some(format!("Loading the sample {file}…")));
                    TimeoutFuture::new(0).await;
                    match fetch_bytes(&format!("samples/{file}")).await {
                        Ok(bytes) => reader.add(file, &bytes),
                        Err(message) => {
                            set_progress.set(Some(message));
                            return;
                        }
                    }
                    Vec::new()
                }
            };
            let total = files.len();
            let mut last_yield = started;
            for (i, (name, file)) in files.iter().enumerate() {
                // Let the page paint and answer every ~50 ms of work.
                if now_ms() - last_yield > YIELD_EVERY_MS {
                    set_progress.set(Some(format!("Reading file {} of {total}: {name}", i + 1)));
                    TimeoutFuture::new(0).await;
                    last_yield = now_ms();
                }
                match file_bytes(file).await {
                    Ok(bytes) => reader.add(name, &bytes),
                    Err(message) => set_progress.set(Some(message)),
                }
            }
            let mut study = reader.finish();
            let default = study.default;
            set_read_ms.set(Some(now_ms() - started));
            set_report.set(Some(study.report()));
            // Without a DICOM CT, show the first NIfTI volume dropped.
            let nifti = study
                .volumes
                .drain(..)
                .next()
                .map(|(label, volume)| Loaded {
                    volume,
                    warnings: Vec::new(),
                    label,
                    assemble_ms: 0.0,
                });
            state.set_value(DropState { study: Some(study) });
            set_progress.set(None);
            match (default, nifti) {
                (Some(index), _) => choose(index),
                (None, Some(loaded)) => set_loaded.set(Some(Ok(loaded))),
                (None, None) => {}
            }
        });
    };

    let on_files = move |ev: leptos::ev::Event| {
        let files = input_files(&ev);
        if !files.is_empty() {
            open(Opened::Files(files));
        }
    };

    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        let entries = ev
            .data_transfer()
            .map(|transfer| dropped_entries(&transfer))
            .unwrap_or_default();
        if !entries.is_empty() {
            open(Opened::Dropped(entries));
        }
    };

    let on_sample = move |ev: leptos::ev::Event| {
        let chosen = event_target_value(&ev);
        if let Some((file, _)) = SAMPLES.iter().find(|(file, _)| *file == chosen) {
            open(Opened::Sample(file));
        }
    };

    view! {
        <section class="panel" aria-labelledby="open-title">
            <h2 id="open-title">"Open a chest CT"</h2>
            <p>"DICOM files, a folder, a .zip archive or a NIfTI volume (.nii, .nii.gz). They are read in this browser; nothing is uploaded."</p>
            <div class="inputs drop-zone" data-testid="drop-zone"
                on:dragover=|ev: leptos::ev::DragEvent| ev.prevent_default()
                on:drop=on_drop>
                <p class="drop-hint">"Drop files, a folder or a .zip here, or"</p>
                <label>"Files or .zip "
                    <input type="file" multiple data-testid="file-input" on:change=on_files />
                </label>
                <label>"A folder "
                    <input type="file" prop:webkitdirectory=true data-testid="folder-input" on:change=on_files />
                </label>
                <label>"Or try a sample "
                    <select data-testid="sample-menu" on:change=on_sample>
                        <option value="" selected>"choose a case…"</option>
                        {SAMPLES.iter().map(|(file, label)| view! { <option value=*file>{*label}</option> }).collect_view()}
                    </select>
                </label>
            </div>
            <p class="note">"The samples are synthetic chest phantoms (48 slices of 160x160), not patients."</p>
            {move || progress.get().map(|p| view! { <p role="status" data-testid="progress">{p}</p> })}
            {move || report.get().map(|r| view! { <StudyView report=r selected choose /> })}
            {move || read_ms.get().map(|ms| view! {
                <p data-testid="read-time" data-ms=ms>{format!("Read in {:.0} ms", ms)}</p>
            })}
            {move || loaded.get().map(|l| match l {
                Ok(loaded) => view! { <VolumeView loaded compute models /> }.into_any(),
                Err(message) => view! { <p class="error" role="alert" data-testid="volume-error">{message}</p> }.into_any(),
            })}
        </section>
    }
}

/// The series picker and the skipped files of a drop.
#[component]
fn StudyView(
    /// What the drop holds.
    report: StudyReport,
    /// Index of the series on screen.
    selected: ReadSignal<Option<usize>>,
    /// Called with the index of the series the user picks.
    choose: impl Fn(usize) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let json = serde_json::to_string(&report).unwrap_or_default();
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
            view! {
                <tr>
                    <td>
                        <input type="radio" name="series" aria-label=format!("series {}", index + 1)
                            disabled=disabled
                            prop:checked=move || selected.get() == Some(index)
                            on:change=move |_| choose(index) />
                    </td>
                    <td>{summary.series_number.map(|n| n.to_string()).unwrap_or_default()}</td>
                    <td>{summary.description.clone()}</td>
                    <td>{summary.modality.clone()}</td>
                    <td>{summary.slices}</td>
                    <td>{format!("{}x{}", summary.image_size[0], summary.image_size[1])}</td>
                    <td>{spacing}</td>
                    <td>{summary.kernel.clone()}</td>
                    <td>{format!("{:.0} MB", summary.volume_bytes as f64 / 1e6)}</td>
                    <td>{note}</td>
                </tr>
            }
        })
        .collect_view();
    let skipped = report.skipped.clone();
    view! {
        <table data-testid="series-picker">
            <caption>"Series found"</caption>
            <thead><tr>
                <th scope="col">"Show"</th><th scope="col">"No."</th><th scope="col">"Description"</th>
                <th scope="col">"Modality"</th><th scope="col">"Slices"</th><th scope="col">"Matrix"</th>
                <th scope="col">"Spacing"</th><th scope="col">"Kernel"</th><th scope="col">"Memory"</th><th scope="col">"Note"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
        <Show when=move || !skipped.is_empty()>
            <details open>
                <summary>{format!("{} file(s) skipped", report.skipped.len())}</summary>
                <ul data-testid="error-list">
                    {report.skipped.iter().map(|e| view! { <li>{e.clone()}</li> }).collect_view()}
                </ul>
            </details>
        </Show>
        <pre data-testid="study-json" hidden>{json}</pre>
    }
}

/// The assembled volume: geometry, warnings and its middle axial slice.
#[component]
fn VolumeView(
    /// The volume to show.
    loaded: Loaded,
    /// The page's backend, once chosen.
    compute: LocalResource<Compute>,
    /// The trained models the page has.
    models: Models,
) -> impl IntoView {
    let [depth, rows, columns] = loaded.volume.dims();
    let [dz, dy, dx] = loaded.volume.spacing();
    let (diagnosis, set_diagnosis) = signal_local(None);
    view! {
        <div class="volume" data-testid="volume">
            <p data-testid="volume-info" data-assemble-ms=loaded.assemble_ms>
                {format!("{}: {depth} slices of {rows}x{columns}, voxel {dx:.3} x {dy:.3} x {dz:.3} mm", loaded.label)}
            </p>
            <ul class="warnings">
                {loaded.warnings.iter().map(|w| view! { <li>{w.clone()}</li> }).collect_view()}
            </ul>
            <Viewer volume=loaded.volume.clone() diagnosis />
            <DiagnosePanel volume=loaded.volume compute models set_diagnosis />
        </div>
    }
}
