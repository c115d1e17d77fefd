//! Files and folders dropped on the page: the entries are taken from the drop
//! event at once (the browser empties the transfer afterwards), then folders
//! are walked through the File System entries API, each file named by its
//! path inside the drop, as a folder input names them.

use js_sys::{Array, Promise};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    DataTransfer, File, FileSystemDirectoryEntry, FileSystemDirectoryReader, FileSystemEntry,
    FileSystemFileEntry,
};

/// The top-level entries of a drop (files and folders).
pub fn dropped_entries(transfer: &DataTransfer) -> Vec<FileSystemEntry> {
    let items = transfer.items();
    (0..items.length())
        .filter_map(|i| items.get(i))
        .filter(|item| item.kind() == "file")
        .filter_map(|item| item.webkit_get_as_entry().ok().flatten())
        .collect()
}

/// Every file under `entries` (folders recursively), with its path in the drop.
pub async fn entry_files(entries: Vec<FileSystemEntry>) -> Result<Vec<(String, File)>, String> {
    let mut files = Vec::new();
    let mut pending = entries;
    while let Some(entry) = pending.pop() {
        let path = entry.full_path().trim_start_matches('/').to_owned();
        if entry.is_directory() {
            let reader = entry
                .unchecked_into::<FileSystemDirectoryEntry>()
                .create_reader();
            // readEntries hands out a folder in batches until one comes back empty.
            loop {
                let batch = read_entries(&reader)
                    .await
                    .map_err(|_| format!("{path}: the browser could not list this folder"))?;
                if batch.length() == 0 {
                    break;
                }
                pending.extend(batch.iter().map(JsCast::unchecked_into::<FileSystemEntry>));
            }
        } else if entry.is_file() {
            let file = file_of(entry.unchecked_ref::<FileSystemFileEntry>())
                .await
                .map_err(|_| format!("{path}: the browser could not open this file"))?;
            files.push((path, file));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

async fn read_entries(reader: &FileSystemDirectoryReader) -> Result<Array, JsValue> {
    let mut outcome = Ok(());
    let promise = Promise::new(&mut |resolve, reject| {
        outcome = reader.read_entries_with_callback_and_callback(&resolve, &reject);
    });
    outcome?;
    Ok(JsFuture::from(promise).await?.unchecked_into())
}

async fn file_of(entry: &FileSystemFileEntry) -> Result<File, JsValue> {
    let promise = Promise::new(&mut |resolve, reject| {
        entry.file_with_callback_and_callback(&resolve, &reject);
    });
    Ok(JsFuture::from(promise).await?.unchecked_into())
}
