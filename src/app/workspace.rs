//! The reading workspace, once a CT is open: the views fill the middle of
//! the screen and a side panel beside them holds the diagnosis (on top, so
//! the result is read with the views in sight), the display controls and the
//! series. On a narrow screen the panel goes below the views.

use std::rc::Rc;

use leptos::prelude::*;

use super::compute::Compute;
use super::diagnose::DiagnosePanel;
use super::display::DisplayPanel;
use super::models::Models;
use super::scene::Scene;
use super::series::SeriesPanel;
use super::study::{Loaded, Study};
use super::viewer::Viewer;

/// The workspace of the volume on screen.
#[component]
pub fn Workspace(
    /// The volume on screen.
    loaded: Rc<Loaded>,
    /// What is open.
    study: Study,
    /// The page's backend, once chosen.
    compute: LocalResource<Compute>,
    /// The trained models the page has.
    models: Models,
    /// The network the user picked, if any.
    picked: RwSignal<Option<String>>,
) -> impl IntoView {
    let (diagnosis, set_diagnosis) = signal_local(None);
    let scene = Scene::new(Rc::clone(&loaded.volume), diagnosis);
    let volume = Rc::clone(&loaded.volume);
    view! {
        <div class="workspace" data-testid="volume">
            <Viewer scene />
            <aside class="side-panel" aria-label="Diagnosis, display and series">
                <DiagnosePanel volume compute models picked set_diagnosis />
                <DisplayPanel scene />
                <SeriesPanel loaded study />
            </aside>
        </div>
    }
}
