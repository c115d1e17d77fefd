//! The first screen, before a CT is open: what the page does, the drop zone
//! with the file, folder and sample pickers, the model in use (and a site's
//! own), and the privacy promise, all on one screen. It also shows reading
//! progress, and what was found when the files hold no CT to show.

use leptos::prelude::*;

use super::models::{LoadedModel, ModelPanel, Models};
use super::open::OpenControls;
use super::series::StudyView;
use super::study::Study;

/// The welcome screen.
#[component]
pub fn Welcome(
    /// What is open (nothing yet, or files without a CT to show).
    study: Study,
    /// The trained models the page has.
    models: Models,
    /// Sets the site's own model.
    set_own: WriteSignal<Option<LoadedModel>, LocalStorage>,
) -> impl IntoView {
    view! {
        <div class="welcome">
            <section class="intro" aria-labelledby="intro-title">
                <h2 id="intro-title">
                    "COVID-19 or community-acquired pneumonia? A second look at a chest CT, in this browser."
                </h2>
                <p>
                    "Open a chest CT: the page finds the lungs, runs the Dual-Sampling Attention Network "
                    "(Ouyang et al., IEEE TMI 2020) on them and shows the probability of COVID-19 against "
                    "community-acquired pneumonia beside axial, coronal and sagittal views, with where the "
                    "network looked drawn over them."
                </p>
            </section>
            <div class="welcome-grid">
                <section class="panel open-panel" aria-labelledby="open-title">
                    <h2 id="open-title">"Open a chest CT"</h2>
                    <div class="drop-zone" data-testid="drop-zone">
                        <p class="drop-hint">
                            "Drop DICOM files, a folder, a .zip archive or a NIfTI volume (.nii, .nii.gz) here"
                        </p>
                        <OpenControls study compact=false />
                    </div>
                    <p class="note">
                        "Read in this browser; nothing is uploaded. The samples are synthetic chest "
                        "phantoms (48 slices of 160x160), not patients."
                    </p>
                    {move || study.progress.get().map(|p| view! { <p role="status" data-testid="progress">{p}</p> })}
                    {move || match study.loaded.get() {
                        Some(Err(message)) => Some(view! {
                            <p class="error" role="alert" data-testid="volume-error">{message}</p>
                        }.into_any()),
                        None if study.report.with(Option::is_some) => Some(view! {
                            <p class="error" role="alert">"No CT series to show in what was opened."</p>
                        }.into_any()),
                        _ => None,
                    }}
                    <StudyView study skipped_open=true />
                </section>
                <div class="welcome-side">
                    <ModelPanel models set_own />
                    <section class="panel privacy" aria-labelledby="privacy-title">
                        <h2 id="privacy-title">"Privacy"</h2>
                        <p data-testid="privacy-statement">
                            "Nothing you open here leaves this computer: the page runs entirely in your "
                            "browser and only loads its own files from this site. No upload, no analytics, "
                            "no third-party content. After the first visit the page also works offline."
                        </p>
                        <p class="warning">"Research software, not a medical device."</p>
                    </section>
                </div>
            </div>
        </div>
    }
}
