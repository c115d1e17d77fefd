//! The viewer: the axial, coronal and sagittal views of the open CT filling
//! the middle of the screen, with linked crosshairs (a click in one view
//! moves the other two), a layout switch (one large view and two small, three
//! equal, a single view), the HU under the pointer, and the keyboard
//! shortcuts with their list. Each view is a [`PlaneView`]; once there is a
//! diagnosis, its attention is drawn over all three.

use leptos::html;
use leptos::prelude::*;

use super::dialogs::{ShortcutsDialog, show};
use super::keys::on_key;
use super::plane::PlaneView;
use super::scene::{Arrangement, PLANES, Scene, plane_name, plane_title};

/// The viewer of `scene`'s CT.
#[component]
pub fn Viewer(
    /// The views' shared state.
    scene: Scene,
) -> impl IntoView {
    let help = NodeRef::<html::Dialog>::new();
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        on_key(scene, &ev, || show(help));
    });
    on_cleanup(move || keys.remove());
    let layouts = Arrangement::ALL.map(|arrangement| {
        view! {
            <button data-testid=format!("layout-{}", arrangement.name())
                aria-pressed=move || (scene.arrangement.get() == arrangement).to_string()
                on:click=move |_| scene.arrangement.set(arrangement)>
                {arrangement.label()}
            </button>
        }
    });
    let mains = PLANES.map(|plane| {
        view! {
            <button data-testid=format!("main-{}", plane_name(plane))
                aria-pressed=move || (scene.main.get() == plane).to_string()
                on:click=move |_| scene.main.set(plane)>
                {plane_title(plane)}
            </button>
        }
    });
    let views = PLANES.map(|plane| view! { <PlaneView plane scene /> });
    view! {
        <section class="viewer" data-testid="viewer" aria-label="Views of the CT">
            <div class="viewer-bar" role="toolbar" aria-label="Views">
                <div class="segmented" role="group" aria-label="Layout">{layouts}</div>
                <div class="segmented" role="group" aria-label="Large view">{mains}</div>
                <span class="readout" data-testid="hu-readout">
                    {move || scene.readout.get().unwrap_or_default()}
                </span>
                <button class="quiet" data-testid="shortcuts-button" aria-haspopup="dialog"
                    aria-keyshortcuts="?" on:click=move |_| show(help)>
                    "Shortcuts (?)"
                </button>
            </div>
            <div class="viewer-body">
                <div class="planes" data-testid="planes"
                    data-layout=move || scene.arrangement.get().name()>
                    {views}
                </div>
            </div>
            <ShortcutsDialog dialog=help />
        </section>
    }
}
