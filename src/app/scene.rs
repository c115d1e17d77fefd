//! What the views of one open CT share: the cursor the crosshairs follow, the
//! display window, the attention overlay's settings, each view's zoom and
//! pan, the layout, and which view is under the pointer. The viewer, its
//! keyboard shortcuts and the side panel's display controls all read and
//! set one [`Scene`].

use std::rc::Rc;

use leptos::prelude::*;

use crate::pipeline::{BranchMaps, Diagnosis};
use crate::render::{OverlayStyle, Plane, Window};
use crate::volume::Volume;

/// The three planes, in the order the views are laid out.
pub const PLANES: [Plane; 3] = [Plane::Axial, Plane::Coronal, Plane::Sagittal];

/// Which component of the cursor `[k, j, i]` a plane pages through (also
/// its index in [`PLANES`]).
pub fn axis(plane: Plane) -> usize {
    match plane {
        Plane::Axial => 0,
        Plane::Coronal => 1,
        Plane::Sagittal => 2,
    }
}

/// The plane's name in the page.
pub fn plane_name(plane: Plane) -> &'static str {
    match plane {
        Plane::Axial => "axial",
        Plane::Coronal => "coronal",
        Plane::Sagittal => "sagittal",
    }
}

/// The plane's name as a title.
pub fn plane_title(plane: Plane) -> &'static str {
    match plane {
        Plane::Axial => "Axial",
        Plane::Coronal => "Coronal",
        Plane::Sagittal => "Sagittal",
    }
}

/// Window presets offered, by name.
pub const PRESETS: [(&str, &str, Window); 3] = [
    ("lung", "lung (1500 / -600)", Window::LUNG),
    ("mediastinum", "mediastinum (400 / 40)", Window::MEDIASTINUM),
    ("bone", "bone (2500 / 480)", Window::BONE),
];

/// How the three views share the viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrangement {
    /// The main view large, the other two small beside (or below) it.
    Large,
    /// Three views of the same size.
    Equal,
    /// The main view alone.
    Single,
}

impl Arrangement {
    /// Every arrangement, in the order the layout switch offers them.
    pub const ALL: [Arrangement; 3] = [Self::Large, Self::Equal, Self::Single];

    /// Its name (the viewer's `data-layout`, the switch's test ids).
    pub fn name(self) -> &'static str {
        match self {
            Self::Large => "large",
            Self::Equal => "equal",
            Self::Single => "single",
        }
    }

    /// The switch's label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Large => "1 large + 2",
            Self::Equal => "3 equal",
            Self::Single => "single",
        }
    }

    /// The next one (the `L` key).
    pub fn next(self) -> Self {
        match self {
            Self::Large => Self::Equal,
            Self::Equal => Self::Single,
            Self::Single => Self::Large,
        }
    }
}

/// Which attention map is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Map {
    /// The mean of the two branches'.
    Ensemble,
    /// Branch U's.
    Uniform,
    /// Branch B's.
    Balanced,
}

impl Map {
    /// This map of `maps`.
    pub fn of(self, maps: &BranchMaps) -> &[f32] {
        match self {
            Self::Ensemble => &maps.ensemble,
            Self::Uniform => &maps.uniform,
            Self::Balanced => &maps.balanced,
        }
    }
}

/// The overlay as the display controls set it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overlay {
    /// Drawn at all.
    pub shown: bool,
    /// Also outside the lungs (grown by the pipeline's margin).
    pub whole_map: bool,
    /// Which map.
    pub map: Map,
    /// Colours, threshold, opacity.
    pub style: OverlayStyle,
    /// The lung mask's outline on top.
    pub outline: bool,
}

impl Default for Overlay {
    fn default() -> Self {
        Self {
            shown: true,
            whole_map: false,
            map: Map::Ensemble,
            style: OverlayStyle::default(),
            outline: false,
        }
    }
}

/// A view's zoom (1 = fit) and pan offset in CSS pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZoomPan {
    /// Magnification over the fitted image, 1 to [`MAX_ZOOM`].
    pub scale: f64,
    /// Shift of the image, CSS pixels.
    pub offset: [f64; 2],
}

impl Default for ZoomPan {
    fn default() -> Self {
        Self {
            scale: 1.0,
            offset: [0.0; 2],
        }
    }
}

/// Zoom factor of one wheel step or key press, and the largest zoom.
pub const ZOOM_STEP: f64 = 1.25;
/// The largest zoom.
pub const MAX_ZOOM: f64 = 8.0;

/// The shared state of the views of one CT (copyable handles).
#[derive(Clone, Copy)]
pub struct Scene {
    /// The CT.
    pub volume: StoredValue<Rc<Volume>, LocalStorage>,
    /// `[k, j, i]`: the voxel the crosshairs meet at; each view shows its
    /// plane through it.
    pub cursor: RwSignal<[usize; 3]>,
    /// The display window.
    pub window: RwSignal<Window>,
    /// The attention overlay's settings.
    pub overlay: RwSignal<Overlay>,
    /// The diagnosis whose attention is overlaid, once there is one.
    pub diagnosis: ReadSignal<Option<Rc<Diagnosis>>, LocalStorage>,
    /// Zoom and pan of each view, by [`axis`].
    pub zoom: [RwSignal<ZoomPan>; 3],
    /// How the views are laid out.
    pub arrangement: RwSignal<Arrangement>,
    /// The large (or single) view.
    pub main: RwSignal<Plane>,
    /// The view under the pointer, if any.
    pub pointer: RwSignal<Option<Plane>>,
    /// The HU under the pointer, in words.
    pub readout: RwSignal<Option<String>>,
}

impl Scene {
    /// The scene of `volume`: crosshairs at its centre, lung window, axial
    /// view large.
    pub fn new(
        volume: Rc<Volume>,
        diagnosis: ReadSignal<Option<Rc<Diagnosis>>, LocalStorage>,
    ) -> Self {
        let centre = volume.dims().map(|n| n / 2);
        Self {
            volume: StoredValue::new_local(volume),
            cursor: RwSignal::new(centre),
            window: RwSignal::new(Window::LUNG),
            overlay: RwSignal::new(Overlay::default()),
            diagnosis,
            zoom: [(); 3].map(|()| RwSignal::new(ZoomPan::default())),
            arrangement: RwSignal::new(Arrangement::Large),
            main: RwSignal::new(Plane::Axial),
            pointer: RwSignal::new(None),
            readout: RwSignal::new(None),
        }
    }

    /// The number of images `plane` pages through.
    pub fn count(&self, plane: Plane) -> usize {
        self.volume.with_value(|v| plane.count(v.dims()))
    }

    /// Moves `plane` to image `index` (clamped).
    pub fn set_slice(&self, plane: Plane, index: usize) {
        let last = self.count(plane).saturating_sub(1);
        self.cursor.update(|c| c[axis(plane)] = index.min(last));
    }

    /// Moves `plane` by `step` images (clamped).
    pub fn step_slice(&self, plane: Plane, step: isize) {
        let current = self.cursor.get_untracked()[axis(plane)];
        self.set_slice(plane, current.saturating_add_signed(step));
    }

    /// Moves the crosshairs to where the overlaid map is strongest (inside
    /// the lung region unless the overlay shows the whole map); nothing
    /// without a diagnosis.
    pub fn go_to_peak(&self) {
        let overlay = self.overlay.get_untracked();
        let peak = self.diagnosis.with_untracked(|d| {
            d.as_deref().and_then(|d| {
                d.attention_peak(
                    overlay.map.of(&d.summary.feature_attention),
                    overlay.whole_map,
                )
            })
        });
        if let Some(peak) = peak {
            self.cursor.set(peak);
        }
    }

    /// Multiplies `plane`'s zoom by `factor` (between 1 and [`MAX_ZOOM`]).
    pub fn zoom_by(&self, plane: Plane, factor: f64) {
        self.zoom[axis(plane)].update(|z| z.scale = (z.scale * factor).clamp(1.0, MAX_ZOOM));
    }

    /// Whether `plane` is shown in the current arrangement (tracked).
    pub fn shown(&self, plane: Plane) -> bool {
        self.arrangement.get() != Arrangement::Single || self.main.get() == plane
    }

    /// Shows `plane` alone, or, when it already is, goes back to one large
    /// view and two small ones.
    pub fn toggle_single(&self, plane: Plane) {
        if self.arrangement.get_untracked() == Arrangement::Single
            && self.main.get_untracked() == plane
        {
            self.arrangement.set(Arrangement::Large);
        } else {
            self.main.set(plane);
            self.arrangement.set(Arrangement::Single);
        }
    }
}
