//! One DICOM file -> its image frames as slices in Hounsfield units with their
//! geometry and the series-level attributes, via dicom-rs.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_dictionary_std::{tags, uids};
use dicom_object::file::ReadPreamble;
use dicom_object::mem::InMemElement;
use dicom_object::{DefaultDicomObject, FileMetaTableBuilder, InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use super::error::DicomError;
use super::jpeg2000;
use super::lengths;
use super::pixels::{FilePixels, FramePixels, HuMapping};
use super::rle;

/// HU given to padding pixels (outside the reconstructed field of view): air.
pub const PADDING_HU: i16 = -1024;

/// Attributes shared by the slices of a series, as read from one file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeriesAttributes {
    /// SeriesInstanceUID (kept as written, even when not a valid UID).
    pub series_uid: String,
    /// StudyInstanceUID.
    pub study_uid: String,
    /// SOPClassUID.
    pub sop_class: String,
    /// Modality, e.g. `CT`.
    pub modality: String,
    /// SeriesDescription.
    pub description: String,
    /// SeriesNumber.
    pub series_number: Option<i32>,
    /// ImageType values, e.g. `["ORIGINAL", "PRIMARY", "AXIAL"]`.
    pub image_type: Vec<String>,
    /// ConvolutionKernel.
    pub kernel: String,
    /// StudyDate (YYYYMMDD).
    pub study_date: String,
    /// BodyPartExamined.
    pub body_part: String,
    /// AcquisitionNumber.
    pub acquisition: Option<i32>,
    /// PatientName: kept in memory and shown to the user only, never logged.
    pub patient_name: String,
    /// PatientID: kept in memory and shown to the user only, never logged.
    pub patient_id: String,
}

/// One image frame in HU with its geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    /// Name of the file it came from.
    pub file: String,
    /// Frame index within that file.
    pub frame: u32,
    /// Series-level attributes.
    pub series: SeriesAttributes,
    /// Rows (image height).
    pub rows: usize,
    /// Columns (image width).
    pub columns: usize,
    /// ImagePositionPatient of the first pixel's centre, mm.
    pub position: Option<[f64; 3]>,
    /// ImageOrientationPatient: row direction cosines, then column direction cosines.
    pub orientation: Option<[f64; 6]>,
    /// PixelSpacing: `[between rows, between columns]` in mm.
    pub pixel_spacing: Option<[f64; 2]>,
    /// SliceThickness, mm.
    pub thickness: Option<f64>,
    /// InstanceNumber.
    pub instance: Option<i32>,
    /// AcquisitionNumber.
    pub acquisition: Option<i32>,
    /// The frame's pixels (in HU through [`FramePixels::hu`]).
    pub pixels: FramePixels,
}

/// Opens a Part 10 file (with or without its preamble), or, when it has no
/// file meta group, a bare data set in implicit or explicit VR little endian
/// (what some old archives and CD exports hold) if that reads as an image.
fn open(file: &str, bytes: &[u8]) -> Result<DefaultDicomObject, DicomError> {
    lengths::check_file(bytes).map_err(|error| DicomError::NotDicom {
        file: file.to_owned(),
        reason: error.to_string(),
    })?;
    OpenFileOptions::new()
        .read_preamble(ReadPreamble::Auto)
        .from_reader(bytes)
        .or_else(|error| {
            bare_dataset(bytes).ok_or_else(|| DicomError::NotDicom {
                file: file.to_owned(),
                reason: error.to_string(),
            })
        })
}

/// A data set without meta group, tried only when the file starts like one:
/// an element of group 0008 whose encoding is plausible (as DCMTK guesses),
/// so that other files are never parsed with made-up lengths.
fn bare_dataset(bytes: &[u8]) -> Option<DefaultDicomObject> {
    let head = bytes.get(..8)?;
    if head[..2] != [0x08, 0x00] {
        return None;
    }
    let explicit = head[4].is_ascii_uppercase() && head[5].is_ascii_uppercase();
    let implicit_length = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
    let uid = if explicit {
        uids::EXPLICIT_VR_LITTLE_ENDIAN
    } else if implicit_length <= bytes.len() {
        uids::IMPLICIT_VR_LITTLE_ENDIAN
    } else {
        return None;
    };
    let ts = TransferSyntaxRegistry.get(uid)?;
    lengths::check_dataset(bytes, 0, ts).ok()?;
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, ts).ok()?;
    if obj.get(tags::PIXEL_DATA).is_none() || obj.get(tags::ROWS).is_none() {
        return None;
    }
    obj.with_meta(FileMetaTableBuilder::new().transfer_syntax(uid))
        .ok()
}

/// Reads every image frame of one DICOM file (`file` names it in errors).
pub fn read_file(file: &str, bytes: &[u8]) -> Result<Vec<Slice>, DicomError> {
    let mut obj = open(file, bytes)?;
    check_is_image(file, &obj)?;
    let pixel_error = |reason: String| DicomError::PixelData {
        file: file.to_owned(),
        reason,
    };
    let ts = clean(obj.meta().transfer_syntax()).to_owned();
    if jpeg2000::handles(&ts) {
        jpeg2000::decode_in_place(&mut obj).map_err(|e| pixel_error(e.to_string()))?;
    } else if rle::handles(&ts) {
        rle::check(&obj).map_err(|e| pixel_error(e.to_string()))?;
    }
    check_codec(file, &obj)?;
    let pixels = FilePixels::take(&mut obj).map_err(pixel_error)?;
    let series = series_attributes(&obj);
    let padding = padding_range(&obj);
    let bits = int(&obj, tags::BITS_STORED)
        .and_then(|b| u32::try_from(b).ok())
        .filter(|b| (1..=16).contains(b));
    let signed = int(&obj, tags::PIXEL_REPRESENTATION) == Some(1);
    let slices = (0..pixels.frames())
        .map(|frame| {
            let groups = FrameAttributes::new(&obj, frame);
            let mapping = HuMapping {
                bits,
                signed,
                padding,
                slope: groups.float(tags::RESCALE_SLOPE).unwrap_or(1.0),
                intercept: groups.float(tags::RESCALE_INTERCEPT).unwrap_or(0.0),
            };
            Slice {
                file: file.to_owned(),
                frame,
                series: series.clone(),
                rows: pixels.rows(),
                columns: pixels.columns(),
                position: groups.floats(tags::IMAGE_POSITION_PATIENT),
                orientation: groups.floats(tags::IMAGE_ORIENTATION_PATIENT),
                pixel_spacing: groups.floats(tags::PIXEL_SPACING),
                thickness: groups.float(tags::SLICE_THICKNESS),
                instance: int(&obj, tags::INSTANCE_NUMBER),
                acquisition: int(&obj, tags::ACQUISITION_NUMBER),
                pixels: pixels.frame(frame, mapping),
            }
        })
        .collect();
    Ok(slices)
}

fn check_is_image(file: &str, obj: &DefaultDicomObject) -> Result<(), DicomError> {
    let sop_class = clean(obj.meta().media_storage_sop_class_uid());
    let no_image = |what: String| DicomError::NoImage {
        file: file.to_owned(),
        what,
    };
    if sop_class == uids::MEDIA_STORAGE_DIRECTORY_STORAGE {
        return Err(no_image(
            "a DICOMDIR, the index of a DICOM media".to_owned(),
        ));
    }
    if obj.get(tags::PIXEL_DATA).is_none() {
        let modality = text(obj, tags::MODALITY);
        return Err(no_image(format!(
            "modality {modality:?}, SOP class {sop_class}, without pixel data"
        )));
    }
    let samples = int(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    if samples != 1 {
        return Err(DicomError::NotGrayscale {
            file: file.to_owned(),
            samples: u16::try_from(samples).unwrap_or(0),
            photometric: text(obj, tags::PHOTOMETRIC_INTERPRETATION),
        });
    }
    Ok(())
}

fn check_codec(file: &str, obj: &DefaultDicomObject) -> Result<(), DicomError> {
    let uid = clean(obj.meta().transfer_syntax()).to_owned();
    match TransferSyntaxRegistry.get(&uid) {
        Some(ts) if ts.can_decode_all() => Ok(()),
        Some(ts) => Err(DicomError::UnsupportedCodec {
            file: file.to_owned(),
            name: ts.name().to_owned(),
            uid,
        }),
        None => Err(DicomError::UnsupportedCodec {
            file: file.to_owned(),
            name: "an unknown transfer syntax".to_owned(),
            uid,
        }),
    }
}

fn series_attributes(obj: &InMemDicomObject) -> SeriesAttributes {
    SeriesAttributes {
        series_uid: text(obj, tags::SERIES_INSTANCE_UID),
        study_uid: text(obj, tags::STUDY_INSTANCE_UID),
        sop_class: text(obj, tags::SOP_CLASS_UID),
        modality: text(obj, tags::MODALITY),
        description: text(obj, tags::SERIES_DESCRIPTION),
        series_number: int(obj, tags::SERIES_NUMBER),
        image_type: obj
            .get(tags::IMAGE_TYPE)
            .and_then(|e| e.to_multi_str().ok())
            .map(|v| v.iter().map(|s| s.trim().to_uppercase()).collect())
            .unwrap_or_default(),
        kernel: text(obj, tags::CONVOLUTION_KERNEL),
        study_date: text(obj, tags::STUDY_DATE),
        body_part: text(obj, tags::BODY_PART_EXAMINED),
        acquisition: int(obj, tags::ACQUISITION_NUMBER),
        patient_name: text(obj, tags::PATIENT_NAME),
        patient_id: text(obj, tags::PATIENT_ID),
    }
}

/// The stored-value range `[low, high]` marked as padding, if any.
fn padding_range(obj: &InMemDicomObject) -> Option<(f64, f64)> {
    let value = *floats_of(obj.get(tags::PIXEL_PADDING_VALUE)?)?.first()?;
    let limit = obj
        .get(tags::PIXEL_PADDING_RANGE_LIMIT)
        .and_then(floats_of)
        .and_then(|v| v.first().copied())
        .unwrap_or(value);
    Some((value.min(limit), value.max(limit)))
}

/// Attribute look-up for one frame: the frame's per-frame functional groups,
/// then the shared functional groups (enhanced multi-frame objects), then the
/// top-level data set (classic images).
struct FrameAttributes<'a> {
    scopes: Vec<&'a InMemDicomObject>,
}

impl<'a> FrameAttributes<'a> {
    fn new(obj: &'a InMemDicomObject, frame: u32) -> Self {
        let mut scopes = Vec::new();
        let item = |tag: Tag, index: usize| {
            obj.get(tag)
                .and_then(|e| e.items())
                .and_then(|items| items.get(index))
        };
        for group in [
            item(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, frame as usize),
            item(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, 0),
        ]
        .into_iter()
        .flatten()
        {
            // Each functional group is a sequence (e.g. PlanePositionSequence)
            // whose single item holds the attributes.
            scopes.extend(
                group
                    .iter()
                    .filter_map(|e| e.items().and_then(|items| items.first())),
            );
        }
        scopes.push(obj);
        Self { scopes }
    }

    fn get(&self, tag: Tag) -> Option<&InMemElement> {
        self.scopes.iter().find_map(|scope| scope.get(tag))
    }

    fn float(&self, tag: Tag) -> Option<f64> {
        floats_of(self.get(tag)?)?
            .first()
            .copied()
            .filter(|v| v.is_finite())
    }

    fn floats<const N: usize>(&self, tag: Tag) -> Option<[f64; N]> {
        let values = floats_of(self.get(tag)?)?;
        let array: [f64; N] = values.get(..N)?.try_into().ok()?;
        array.iter().all(|v| v.is_finite()).then_some(array)
    }
}

fn text(obj: &InMemDicomObject, tag: Tag) -> String {
    let Some(element) = obj.get(tag) else {
        return String::new();
    };
    if element.vr() == VR::UN {
        return un_text(element).unwrap_or_default();
    }
    element
        .to_str()
        .map(|s| s.trim().trim_end_matches('\0').to_owned())
        .unwrap_or_default()
}

/// An integer attribute; a US value stored with VR UN (as some exporters
/// write every attribute) is read from its two little-endian bytes.
fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i32> {
    let element = obj.get(tag)?;
    if element.vr() == VR::UN {
        let bytes = element.value().to_bytes().ok()?;
        let dictionary_vr = StandardDataDictionary.by_tag(tag).map(|e| e.vr());
        return match (bytes.len(), dictionary_vr) {
            (2, Some(VirtualVr::Exact(VR::US))) => {
                Some(i32::from(u16::from_le_bytes([bytes[0], bytes[1]])))
            }
            _ => un_text(element)?.parse().ok(),
        };
    }
    element.to_int::<i32>().ok()
}

/// The text of a string attribute stored with VR UN (DS, IS, CS, UI... are
/// ASCII either way).
fn un_text(element: &InMemElement) -> Option<String> {
    let bytes = element.value().to_bytes().ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    Some(text.trim_matches(['\0', ' ']).to_owned())
}

/// Numbers of a decimal attribute, also when stored with VR UN.
fn floats_of(element: &InMemElement) -> Option<Vec<f64>> {
    if element.vr() == VR::UN {
        return un_text(element)?
            .split('\\')
            .map(|v| v.trim().parse().ok())
            .collect();
    }
    element.to_multi_float64().ok()
}

fn clean(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' '])
}
