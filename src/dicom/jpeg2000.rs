//! JPEG 2000 pixel data (transfer syntaxes 1.2.840.10008.1.2.4.90 and .91)
//! decoded with hayro-jpeg2000, a memory-safe, pure-Rust decoder that builds
//! for wasm32, so that the page and `dsan` read these files alike.
//!
//! dicom-rs' own JPEG 2000 adapter wraps openjpeg, which does not build for
//! the browser and, natively, trusts the codestream: fuzzing made it index out
//! of range (more samples than Rows x Columns) and allocate gigabytes from a
//! forged image size. Here the codestream's image header (SIZ) is checked
//! against the DICOM attributes before anything is decoded.
//!
//! The frames are decoded in place: the encapsulated pixel data are replaced
//! by the stored values in native layout under explicit VR little endian, and
//! the rest of the reader treats the file like any uncompressed one.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::adapters::PixelDataObject;
use dicom_object::DefaultDicomObject;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use hayro_jpeg2000::{DecodeSettings, DecoderContext, Image};

/// Largest frame decoded, in pixels (4096 x 4096; CT slices are 512 x 512 to
/// 1024 x 1024). The decoder works in `f32` per pixel, so this bounds what one
/// forged header can make it allocate.
const MAX_FRAME_PIXELS: usize = 4096 * 4096;

/// Start of a JPEG 2000 codestream: SOC then SIZ markers.
const SOC_SIZ: [u8; 4] = [0xFF, 0x4F, 0xFF, 0x51];

/// Why a JPEG 2000 frame could not be decoded.
#[derive(Debug, thiserror::Error)]
pub(super) enum Jpeg2000Error {
    /// An attribute the frames need is absent.
    #[error("attribute {0} is missing")]
    MissingAttribute(&'static str),
    /// Only 8- and 16-bit samples are stored.
    #[error("BitsAllocated {0} is not supported for JPEG 2000 (8 or 16)")]
    BitsAllocated(u16),
    /// The frame is larger than [`MAX_FRAME_PIXELS`].
    #[error("a {columns} x {rows} frame is larger than the {MAX_FRAME_PIXELS} pixels decoded")]
    TooLarge {
        /// Columns.
        columns: u16,
        /// Rows.
        rows: u16,
    },
    /// The pixel data hold fewer frames than NumberOfFrames.
    #[error("frame {0} is missing from the pixel data")]
    MissingFrame(u32),
    /// No SOC + SIZ markers, or a SIZ marker cut short.
    #[error("frame {0} holds no JPEG 2000 image header")]
    NoHeader(u32),
    /// The codestream's image differs from what the DICOM attributes say.
    #[error(
        "frame {frame}: the codestream holds a {width} x {height} image of {components} \
         component(s) at {precision} bits, the attributes say {columns} x {rows}, 1 sample, \
         {bits_allocated} bits allocated"
    )]
    Mismatch {
        /// Frame index.
        frame: u32,
        /// Codestream image width.
        width: u32,
        /// Codestream image height.
        height: u32,
        /// Codestream component count.
        components: u16,
        /// Codestream bits per sample.
        precision: u8,
        /// Columns.
        columns: u16,
        /// Rows.
        rows: u16,
        /// BitsAllocated.
        bits_allocated: u16,
    },
    /// The decoder refused the codestream.
    #[error("frame {frame}: {source}")]
    Decode {
        /// Frame index.
        frame: u32,
        /// Decoder message.
        source: hayro_jpeg2000::DecodeError,
    },
}

/// Whether `ts_uid` is a JPEG 2000 transfer syntax decoded here.
pub(super) fn handles(ts_uid: &str) -> bool {
    matches!(ts_uid, uids::JPEG2000_LOSSLESS | uids::JPEG2000)
}

/// Decodes every frame of `obj` and stores them as native pixel data under
/// explicit VR little endian.
pub(super) fn decode_in_place(obj: &mut DefaultDicomObject) -> Result<(), Jpeg2000Error> {
    let rows = obj.rows().ok_or(Jpeg2000Error::MissingAttribute("Rows"))?;
    let columns = obj
        .cols()
        .ok_or(Jpeg2000Error::MissingAttribute("Columns"))?;
    let bits_allocated = obj
        .bits_allocated()
        .ok_or(Jpeg2000Error::MissingAttribute("BitsAllocated"))?;
    if bits_allocated != 8 && bits_allocated != 16 {
        return Err(Jpeg2000Error::BitsAllocated(bits_allocated));
    }
    let pixels = usize::from(rows) * usize::from(columns);
    if pixels > MAX_FRAME_PIXELS {
        return Err(Jpeg2000Error::TooLarge { columns, rows });
    }
    let shape = FrameShape {
        rows,
        columns,
        bits_allocated,
    };
    let frames = obj.number_of_frames().unwrap_or(1);
    let mut stored = if bits_allocated == 16 {
        Stored::Words(Vec::with_capacity(pixels))
    } else {
        Stored::Bytes(Vec::with_capacity(pixels))
    };
    for frame in 0..frames {
        let codestream = obj
            .frame_pixel_data(frame)
            .ok_or(Jpeg2000Error::MissingFrame(frame))?;
        decode_frame(&codestream, frame, shape, &mut stored)?;
    }
    let element = match stored {
        Stored::Words(words) => {
            DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(words.into()))
        }
        Stored::Bytes(bytes) => {
            DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::U8(bytes.into()))
        }
    };
    obj.put(element);
    obj.meta_mut()
        .set_transfer_syntax(&EXPLICIT_VR_LITTLE_ENDIAN);
    Ok(())
}

/// Decoded stored values, as wide as BitsAllocated.
enum Stored {
    Words(Vec<u16>),
    Bytes(Vec<u8>),
}

impl Stored {
    /// Appends one value; the cast keeps its two's complement bits, read back
    /// as signed or not by PixelRepresentation.
    fn push(&mut self, value: i32) {
        match self {
            Self::Words(words) => words.push(value as u16),
            Self::Bytes(bytes) => bytes.push(value as u8),
        }
    }
}

/// What the DICOM attributes say a frame is.
#[derive(Debug, Clone, Copy)]
struct FrameShape {
    rows: u16,
    columns: u16,
    bits_allocated: u16,
}

/// The parts of a codestream's SIZ marker that are checked.
#[derive(Debug, Clone, Copy)]
struct ImageHeader {
    width: u32,
    height: u32,
    components: u16,
    /// Bits per sample of the first component.
    precision: u8,
    /// Whether the first component's samples are signed.
    signed: bool,
}

impl ImageHeader {
    /// Reads SIZ from a raw codestream or one inside a JP2 box (some files
    /// wrap it, against the standard); None when absent or cut short.
    fn find(data: &[u8]) -> Option<Self> {
        let start = data.windows(SOC_SIZ.len()).position(|w| w == SOC_SIZ)?;
        let siz = data.get(start + 4..)?;
        let u32_at = |at: usize| {
            siz.get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        // After Lsiz and Rsiz: Xsiz, Ysiz, XOsiz, YOsiz (then tiles), Csiz at
        // 36 and the first component's Ssiz at 38.
        let (x, y, x0, y0) = (u32_at(4)?, u32_at(8)?, u32_at(12)?, u32_at(16)?);
        let components = siz.get(36..38).map(|b| u16::from_be_bytes([b[0], b[1]]))?;
        let ssiz = *siz.get(38)?;
        Some(Self {
            width: x.checked_sub(x0)?,
            height: y.checked_sub(y0)?,
            components,
            precision: (ssiz & 0x7F) + 1,
            signed: ssiz & 0x80 != 0,
        })
    }
}

/// Decodes one frame and appends its stored values to `out`.
fn decode_frame(
    codestream: &[u8],
    frame: u32,
    shape: FrameShape,
    out: &mut Stored,
) -> Result<(), Jpeg2000Error> {
    let header = ImageHeader::find(codestream).ok_or(Jpeg2000Error::NoHeader(frame))?;
    let mismatch = || Jpeg2000Error::Mismatch {
        frame,
        width: header.width,
        height: header.height,
        components: header.components,
        precision: header.precision,
        columns: shape.columns,
        rows: shape.rows,
        bits_allocated: shape.bits_allocated,
    };
    if header.width != u32::from(shape.columns)
        || header.height != u32::from(shape.rows)
        || header.components != 1
        || u16::from(header.precision) > shape.bits_allocated
    {
        return Err(mismatch());
    }
    let decode_error = |source| Jpeg2000Error::Decode { frame, source };
    let image = Image::new(codestream, &DecodeSettings::default()).map_err(decode_error)?;
    let mut context = DecoderContext::default();
    let decoded = image.decode(&mut context).map_err(decode_error)?;
    let samples = decoded
        .components()
        .first()
        .map(|c| c.samples())
        .filter(|s| s.len() == usize::from(shape.rows) * usize::from(shape.columns))
        .ok_or_else(mismatch)?;
    // The decoder adds 2^(precision - 1) to every sample (the DC level shift
    // of unsigned data); signed samples get it taken back.
    let half = f32::from(1_u16 << (header.precision - 1));
    let (offset, low, high) = if header.signed {
        (-half, -half, half - 1.0)
    } else {
        (0.0, 0.0, 2.0 * half - 1.0)
    };
    for &sample in samples {
        // Lossy streams decode to non-integers: rounded and kept in range, as
        // openjpeg does.
        out.push((sample + offset).round().clamp(low, high) as i32);
    }
    Ok(())
}
