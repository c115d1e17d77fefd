//! The controls that open a CT: files or a .zip, a folder, a bundled sample.
//! The welcome screen shows them large in its drop zone; once a CT is open
//! the header shows them small (and a drop anywhere on the page opens
//! another, see `App`).

use leptos::prelude::*;
use web_sys::File;

use super::input_files;
use super::study::{Opened, Study};

/// The sample cases shipped in `public/samples/` (synthetic phantoms made by
/// `tests/make_samples.sh`): file name and label.
const SAMPLES: [(&str, &str); 4] = [
    ("covid-19-like-1.zip", "COVID-19-like phantom 1"),
    ("covid-19-like-2.zip", "COVID-19-like phantom 2"),
    ("cap-like-1.zip", "CAP-like phantom 1"),
    ("cap-like-2.zip", "CAP-like phantom 2"),
];

/// A picked file's name: its path inside the folder for a folder input.
fn display_name(file: &File) -> String {
    // `webkitRelativePath` (folder inputs) is not in web-sys' File binding.
    js_sys::Reflect::get(file, &"webkitRelativePath".into())
        .ok()
        .and_then(|v| v.as_string())
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| file.name())
}

/// The file, folder and sample pickers.
#[component]
pub fn OpenControls(
    /// Where what is picked opens.
    study: Study,
    /// Small buttons for the header rather than the welcome screen's.
    compact: bool,
) -> impl IntoView {
    let on_files = move |ev: leptos::ev::Event| {
        let files: Vec<(String, File)> = input_files(&ev)
            .into_iter()
            .map(|file| (display_name(&file), file))
            .collect();
        if !files.is_empty() {
            study.open(Opened::Files(files));
        }
    };
    let on_sample = move |ev: leptos::ev::Event| {
        let chosen = event_target_value(&ev);
        if let Some((file, _)) = SAMPLES.iter().find(|(file, _)| *file == chosen) {
            study.open(Opened::Sample(file));
        }
    };
    let [files, folder, sample] = if compact {
        ["Open files", "Open a folder", "Sample "]
    } else {
        [
            "Choose files or a .zip",
            "Choose a folder",
            "Or try a sample ",
        ]
    };
    view! {
        <div class="open-controls" class:compact=compact>
            // The inputs are hidden inside labels styled as buttons: a click on
            // the label opens the picker, and the label shows the input's focus.
            <label class="button file-button">{files}
                <input type="file" multiple class="visually-hidden" data-testid="file-input"
                    on:change=on_files />
            </label>
            <label class="button file-button">{folder}
                <input type="file" prop:webkitdirectory=true class="visually-hidden"
                    data-testid="folder-input" on:change=on_files />
            </label>
            <label class="sample-picker">{sample}
                <select data-testid="sample-menu" on:change=on_sample>
                    <option value="" selected>"choose a case…"</option>
                    {SAMPLES.iter().map(|(file, label)| view! { <option value=*file>{*label}</option> }).collect_view()}
                </select>
            </label>
        </div>
    }
}
