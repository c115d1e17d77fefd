//! The viewer's keyboard and pointer shortcuts: one table, which the
//! shortcuts dialog lists and the key handler reads, so the list says what
//! the keys do. Keys act on the focused view, else the view under the
//! pointer, else the large one; they are left alone while a text field, a
//! menu, a slider or a dialog has them, and when Ctrl, Alt or Meta is held
//! (the browser's own shortcuts).

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Element, KeyboardEvent};

use super::scene::{PLANES, PRESETS, Scene, ZOOM_STEP, ZoomPan, axis, plane_name};
use crate::render::Plane;

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Pages by this many slices.
    Slices(isize),
    /// The first slice.
    First,
    /// The last slice.
    Last,
    /// Zooms in one step.
    ZoomIn,
    /// Zooms out one step.
    ZoomOut,
    /// Undoes zoom and pan.
    Fit,
    /// The window preset at this index of [`PRESETS`].
    Preset(usize),
    /// Makes this plane the large view.
    Main(Plane),
    /// Shows the targeted view alone, or goes back.
    Single,
    /// The next layout.
    NextLayout,
    /// Shows or hides the attention overlay.
    Overlay,
    /// Moves the crosshairs to the overlay's strongest attention.
    Peak,
    /// Opens the list of shortcuts.
    Help,
}

/// A shortcut: the keys (`KeyboardEvent.key` values), how the list shows
/// them, what they do in words, and the action (`None` for pointer gestures,
/// which the views handle).
pub struct Shortcut {
    /// The `key` values that trigger it.
    pub keys: &'static [&'static str],
    /// The keys or gesture as the list shows them.
    pub shown: &'static str,
    /// What it does.
    pub does: &'static str,
    /// The key's action.
    pub action: Option<Action>,
}

const fn key(
    keys: &'static [&'static str],
    shown: &'static str,
    does: &'static str,
    action: Action,
) -> Shortcut {
    Shortcut {
        keys,
        shown,
        does,
        action: Some(action),
    }
}

const fn pointer(shown: &'static str, does: &'static str) -> Shortcut {
    Shortcut {
        keys: &[],
        shown,
        does,
        action: None,
    }
}

/// Every shortcut, in the order the list shows them.
pub const SHORTCUTS: [Shortcut; 19] = [
    key(
        &["ArrowUp", "ArrowLeft"],
        "↑ or ←",
        "previous slice",
        Action::Slices(-1),
    ),
    key(
        &["ArrowDown", "ArrowRight"],
        "↓ or →",
        "next slice",
        Action::Slices(1),
    ),
    key(
        &["PageUp"],
        "Page Up",
        "10 slices back",
        Action::Slices(-10),
    ),
    key(
        &["PageDown"],
        "Page Down",
        "10 slices on",
        Action::Slices(10),
    ),
    key(&["Home"], "Home", "first slice", Action::First),
    key(&["End"], "End", "last slice", Action::Last),
    pointer("wheel", "previous / next slice"),
    key(
        &["+", "="],
        "+",
        "zoom in (also ctrl-wheel)",
        Action::ZoomIn,
    ),
    key(&["-"], "−", "zoom out", Action::ZoomOut),
    key(
        &["0"],
        "0",
        "fit the view again (zoom and pan undone)",
        Action::Fit,
    ),
    pointer("click", "move the other views to this point"),
    pointer(
        "drag · shift-drag",
        "set the window (width across, level down) · pan",
    ),
    key(
        &["1", "2", "3"],
        "1 · 2 · 3",
        "lung · mediastinum · bone window",
        Action::Preset(0),
    ),
    key(
        &["a", "c", "s", "A", "C", "S"],
        "A · C · S",
        "axial · coronal · sagittal as the large view",
        Action::Main(Plane::Axial),
    ),
    key(
        &["f", "F"],
        "F or double-click",
        "this view alone, and back",
        Action::Single,
    ),
    key(
        &["l", "L"],
        "L",
        "next layout: 1 large + 2, 3 equal, single",
        Action::NextLayout,
    ),
    key(
        &["o", "O"],
        "O",
        "attention overlay on / off",
        Action::Overlay,
    ),
    key(
        &["p", "P"],
        "P",
        "crosshairs to the strongest attention",
        Action::Peak,
    ),
    key(&["?"], "?", "this list", Action::Help),
];

/// The action of `key`: the shortcut's; for the window presets and the
/// planes, the table's entry stands for its group and the key names which.
fn action_of(key: &str) -> Option<Action> {
    let shortcut = SHORTCUTS.iter().find(|s| s.keys.contains(&key))?;
    Some(match shortcut.action? {
        Action::Preset(_) => Action::Preset(key.parse::<usize>().ok()?.checked_sub(1)?),
        Action::Main(_) => Action::Main(match key.to_ascii_lowercase().as_str() {
            "c" => Plane::Coronal,
            "s" => Plane::Sagittal,
            _ => Plane::Axial,
        }),
        action => action,
    })
}

/// Whether `ev` belongs to a control that uses keys itself, or to a dialog.
fn taken(ev: &KeyboardEvent) -> bool {
    if ev.ctrl_key() || ev.alt_key() || ev.meta_key() {
        return true;
    }
    let target = ev.target().and_then(|t| t.dyn_into::<Element>().ok());
    target.is_some_and(|t| {
        matches!(t.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA")
            || t.closest("dialog").ok().flatten().is_some()
    })
}

/// The view a key acts on: the focused one, the one under the pointer, or
/// the large one.
fn target(scene: &Scene) -> Plane {
    let focused = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.active_element())
        .and_then(|e| e.get_attribute("data-plane"));
    focused
        .and_then(|name| PLANES.into_iter().find(|p| plane_name(*p) == name))
        .or(scene.pointer.get_untracked())
        .unwrap_or(scene.main.get_untracked())
}

/// Handles a key pressed anywhere on the page while a CT is open; `help`
/// opens the list of shortcuts.
pub fn on_key(scene: Scene, ev: &KeyboardEvent, help: impl Fn()) {
    if taken(ev) {
        return;
    }
    let Some(action) = action_of(&ev.key()) else {
        return;
    };
    ev.prevent_default();
    let plane = target(&scene);
    match action {
        Action::Slices(step) => scene.step_slice(plane, step),
        Action::First => scene.set_slice(plane, 0),
        Action::Last => scene.set_slice(plane, usize::MAX),
        Action::ZoomIn => scene.zoom_by(plane, ZOOM_STEP),
        Action::ZoomOut => scene.zoom_by(plane, 1.0 / ZOOM_STEP),
        Action::Fit => scene.zoom[axis(plane)].set(ZoomPan::default()),
        Action::Preset(n) => {
            if let Some((_, _, window)) = PRESETS.get(n) {
                scene.window.set(*window);
            }
        }
        Action::Main(plane) => scene.main.set(plane),
        Action::Single => scene.toggle_single(plane),
        Action::NextLayout => scene.arrangement.update(|a| *a = a.next()),
        Action::Overlay => scene.overlay.update(|o| o.shown = !o.shown),
        Action::Peak => scene.go_to_peak(),
        Action::Help => help(),
    }
}
