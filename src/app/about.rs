//! "About this model / diagnostics", a dialog out of the reading flow: the
//! model card and the input for a site's own model (while a CT is open; the
//! welcome screen shows them otherwise), the compute backend and why it was
//! chosen, the developers' self-check, and what the software is.

use leptos::html;
use leptos::prelude::*;

use super::compute::Compute;
use super::dialogs::Dialog;
use super::models::{LoadedModel, ModelPanel, Models};
use super::self_check::SelfCheck;

/// The dialog.
#[component]
pub fn AboutDialog(
    /// Refers to the dialog.
    dialog: NodeRef<html::Dialog>,
    /// The page's backend, once chosen.
    compute: LocalResource<Compute>,
    /// The trained models the page has.
    models: Models,
    /// Sets the site's own model.
    set_own: WriteSignal<Option<LoadedModel>, LocalStorage>,
    /// Whether a CT is open (then the model panel is here; tracked).
    has_volume: Signal<bool>,
) -> impl IntoView {
    view! {
        <Dialog dialog title="About this model / diagnostics" testid="about">
            <Show when=move || has_volume.get()>
                <ModelPanel models set_own />
            </Show>
            <section class="panel" aria-labelledby="compute-title">
                <h2 id="compute-title">"Compute"</h2>
                <p data-testid="backend-details">{move || match compute.get() {
                    Some(c) => format!("{}: {}.", c.backend.label(), c.reason),
                    None => "Checking for WebGPU…".to_owned(),
                }}</p>
                <p class="note">
                    "The network runs in a Web Worker, off the page's thread. When WebGPU fails during a "
                    "diagnosis, it runs again on the CPU and the result says so."
                </p>
            </section>
            {move || compute.get().map(|compute| view! { <SelfCheck compute /> })}
            <section class="panel" aria-labelledby="software-title">
                <h2 id="software-title">"The software"</h2>
                <p>
                    "The Dual-Sampling Attention Network of Ouyang et al., \u{201c}Dual-Sampling Attention "
                    "Network for Diagnosis of COVID-19 from Community Acquired Pneumonia\u{201d}, IEEE "
                    "Transactions on Medical Imaging 39(8):2595-2605, 2020: a 3D ResNet-34 with online "
                    "attention, two branches trained with uniform and size-balanced sampling, averaged."
                </p>
                <p>
                    "Nothing leaves this computer: no upload, no analytics, no third-party content."
                </p>
                <p class="warning">"Research software, not a medical device."</p>
            </section>
        </Dialog>
    }
}
