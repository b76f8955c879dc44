//! Files the server re-reads when they change, without a restart: the htpasswd file, a local
//! JWKS, the TLS certificate and key. `Watched<T>` holds the file's parsed form and, when it is
//! asked and at least `CHECK_EVERY` has passed since it last looked, compares the file's
//! modification time, length and inode with what it read; a change is read and parsed again.
//! A file that cannot be read or parsed (half written, removed during a rotation) keeps the
//! last good value, with one WARN line per change seen, so a bad edit never locks everyone out.
//! The check is a `stat` at most once a second, done by whichever caller comes first; no task
//! runs in the background. Nothing here knows what the files mean.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often a file is looked at, at most.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What identifies one version of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Ok(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode,
    })
}

/// Turns a file's bytes into its value, or says why it cannot.
pub type Parse<T> = fn(&[u8]) -> Result<T, String>;

struct State<T> {
    value: Arc<T>,
    stamp: Option<Stamp>,
    checked: Instant,
    /// Bumped on every successful re-read (callers key caches on it).
    generation: u64,
}

/// A file's parsed content, re-read when the file changes.
pub struct Watched<T> {
    path: PathBuf,
    what: &'static str,
    parse: Parse<T>,
    state: Mutex<State<T>>,
}

/// Why a watched file could not be loaded at start.
#[derive(Debug, thiserror::Error)]
#[error("cannot load the {what} {path}: {why}")]
pub struct LoadError {
    pub what: &'static str,
    pub path: PathBuf,
    pub why: String,
}

impl<T> Watched<T> {
    /// Read and parse `path` now; `what` names the file in messages ("htpasswd file").
    pub fn load(path: &Path, what: &'static str, parse: Parse<T>) -> Result<Self, LoadError> {
        let fail = |why: String| LoadError {
            what,
            path: path.to_path_buf(),
            why,
        };
        let stamp = stamp(path).map_err(|e| fail(e.to_string()))?;
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let value = parse(&bytes).map_err(fail)?;
        Ok(Watched {
            path: path.to_path_buf(),
            what,
            parse,
            state: Mutex::new(State {
                value: Arc::new(value),
                stamp: Some(stamp),
                checked: Instant::now(),
                generation: 0,
            }),
        })
    }

    /// The current value (re-read first if the file changed and a check is due).
    pub fn get(&self) -> Arc<T> {
        self.current().0
    }

    /// The current value and its generation (which changes whenever the value does).
    pub fn current(&self) -> (Arc<T>, u64) {
        let mut s = self.state.lock().expect("watched file state");
        if s.checked.elapsed() >= CHECK_EVERY {
            s.checked = Instant::now();
            self.refresh(&mut s);
        }
        (s.value.clone(), s.generation)
    }

    fn refresh(&self, s: &mut State<T>) {
        let now = match stamp(&self.path) {
            Ok(st) => Some(st),
            Err(e) => {
                if s.stamp.is_some() {
                    tracing::warn!(path = %self.path.display(), "cannot read the {}: {e}; keeping the version read before", self.what);
                }
                s.stamp = None;
                return;
            }
        };
        if now == s.stamp {
            return;
        }
        s.stamp = now;
        let parsed = std::fs::read(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|b| (self.parse)(&b));
        match parsed {
            Ok(v) => {
                s.value = Arc::new(v);
                s.generation += 1;
                tracing::info!(path = %self.path.display(), "re-read the {}", self.what);
            }
            Err(why) => tracing::warn!(
                path = %self.path.display(),
                "the {} changed but cannot be used: {why}; keeping the version read before",
                self.what
            ),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(b: &[u8]) -> Result<Vec<String>, String> {
        let s = std::str::from_utf8(b).map_err(|e| e.to_string())?;
        if s.contains("bad") {
            return Err("bad line".into());
        }
        Ok(s.lines().map(str::to_string).collect())
    }

    #[test]
    fn rereads_a_changed_file_and_keeps_the_last_good_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "a\n").unwrap();
        let w = Watched::load(&path, "test file", lines).unwrap();
        assert_eq!(*w.get(), vec!["a".to_string()]);
        std::fs::write(&path, "a\nb\n").unwrap();
        // Not looked at again within CHECK_EVERY.
        assert_eq!(w.get().len(), 1);
        std::thread::sleep(CHECK_EVERY + Duration::from_millis(50));
        assert_eq!(*w.get(), vec!["a".to_string(), "b".to_string()]);
        assert_eq!(w.current().1, 1);
        std::fs::write(&path, "bad\n").unwrap();
        std::thread::sleep(CHECK_EVERY + Duration::from_millis(50));
        assert_eq!(w.get().len(), 2, "a bad edit keeps the last good version");
        std::fs::remove_file(&path).unwrap();
        std::thread::sleep(CHECK_EVERY + Duration::from_millis(50));
        assert_eq!(
            w.get().len(),
            2,
            "a removed file keeps the last good version"
        );
        std::fs::write(&path, "c\n").unwrap();
        std::thread::sleep(CHECK_EVERY + Duration::from_millis(50));
        assert_eq!(*w.get(), vec!["c".to_string()]);
    }

    #[test]
    fn a_missing_file_at_start_is_an_error_naming_it() {
        let e = Watched::load(Path::new("/nonexistent/x"), "htpasswd file", lines)
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("htpasswd file /nonexistent/x"),
            "{e}"
        );
    }
}
