//! What the cache holds at start, and what a crash left behind: partial fills (a `kill -9`
//! mid-fill), temporary files of writes that never got renamed, a CRC table whose blob never
//! arrived, a blob without its CRC table. All of those are removed (none can be served); what
//! is complete is indexed, its modification time as its last use. Anything else in the folders
//! (a stray file where a shard folder should be) is skipped, not fatal. Runs once, in
//! `Cache::open`.

use super::index::{Index, Kind};
use super::layout::{is_hex, Layout};
use std::path::Path;

fn mtime(m: &std::fs::Metadata) -> u128 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

fn remove(path: &Path, removed: &mut usize) {
    if std::fs::remove_file(path).is_ok() {
        *removed += 1;
    }
}

/// Remove `write_atomically`'s temporary files (`.NAME.ID`) under `dir`, at any depth.
fn remove_temps(dir: &Path, removed: &mut usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => remove_temps(&e.path(), removed),
            Ok(_) if e.file_name().to_string_lossy().starts_with('.') => remove(&e.path(), removed),
            _ => {}
        }
    }
}

/// The index of complete blobs and manifests, and how many leftover files were removed.
pub(super) fn scan(layout: &Layout) -> std::io::Result<(Index, usize)> {
    let mut index = Index::default();
    let mut removed = 0;
    for e in std::fs::read_dir(layout.partials())?.flatten() {
        remove(&e.path(), &mut removed);
    }
    for shard in std::fs::read_dir(layout.blobs())?.flatten() {
        if !shard.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        for e in std::fs::read_dir(shard.path())?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                remove(&e.path(), &mut removed);
                continue;
            }
            if let Some(hex) = name.strip_suffix(".crc") {
                if is_hex(hex) && !layout.blob(hex).exists() {
                    remove(&e.path(), &mut removed);
                }
                continue;
            }
            if !is_hex(&name) {
                continue;
            }
            let Ok(m) = e.metadata() else { continue };
            match std::fs::metadata(layout.crc(&name)) {
                Ok(crc) => index.insert(Kind::Blob, &name, m.len() + crc.len(), mtime(&m)),
                // Renamed into place only after its CRC table: a blob without one was not put
                // there by a fill. It cannot be checked, so it goes.
                Err(_) => remove(&e.path(), &mut removed),
            }
        }
    }
    for e in std::fs::read_dir(layout.manifests())?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            remove(&e.path(), &mut removed);
        } else if let (true, Ok(m)) = (is_hex(&name), e.metadata()) {
            index.insert(Kind::Manifest, &name, m.len(), mtime(&m));
        }
    }
    remove_temps(&layout.root().join("tags"), &mut removed);
    remove_temps(&layout.root().join("links"), &mut removed);
    Ok((index, removed))
}
