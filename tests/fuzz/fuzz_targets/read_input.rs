//! Every reader of dropped files on arbitrary bytes: DICOM (with and without
//! preamble), .zip archives and NIfTI. Any panic is a bug: bad input must be
//! an error naming the file.
#![no_main]

use dsan_ct::dicom::{assemble, read_study};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dsan_ct::dicom::read_file("fuzz.dcm", data);
    let _ = dsan_ct::volume::read_nifti("fuzz.nii", data);
    let study = read_study([("fuzz.zip".to_owned(), data)]);
    for series in study.series {
        let _ = assemble(series);
    }
});
