//! `cache warm`'s progress display, written to the writer `main` gives it (stderr): per image
//! and overall, bytes done of the total and the rate, redrawn in place on a terminal at most
//! four times a second, or as a plain line every two seconds elsewhere (logs, pipes); lines that
//! stay (an image done or failed, the summary) go through `line`. Formatting only: it fetches
//! nothing and never decides what failed.

use std::io::Write;
use std::time::{Duration, Instant};

/// Where progress goes, given by `main` (only `main` chooses the process's streams).
pub struct Output {
    pub writer: Box<dyn Write + Send>,
    /// A terminal: redraw one status line in place.
    pub live: bool,
}

/// The image being warmed.
struct Current {
    label: String,
    done: u64,
    total: u64,
}

pub struct Progress {
    out: Box<dyn Write + Send>,
    live: bool,
    /// A live status line is on screen (to be cleared before the next permanent line).
    shown: bool,
    interval: Duration,
    last_draw: Option<Instant>,
    started: Instant,
    image: Option<Current>,
    done: u64,
    total: u64,
}

impl Progress {
    pub fn new(output: Output) -> Progress {
        let interval = if output.live {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(2)
        };
        Progress {
            out: output.writer,
            live: output.live,
            shown: false,
            interval,
            last_draw: None,
            started: Instant::now(),
            image: None,
            done: 0,
            total: 0,
        }
    }

    /// A line that stays (the status line, if shown, is cleared first and redrawn later).
    pub fn line(&mut self, text: &str) {
        self.clear();
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    /// Bytes to fetch in all; the rate counts from now.
    pub fn start(&mut self, total: u64) {
        self.total = total;
        self.started = Instant::now();
    }

    /// The image now being warmed and its bytes.
    pub fn image(&mut self, label: String, total: u64) {
        self.image = Some(Current {
            label,
            done: 0,
            total,
        });
        // A terminal shows 0% at once; a log gets its first line after the interval.
        self.last_draw = (!self.live).then(Instant::now);
    }

    /// Bytes read.
    pub fn add(&mut self, n: u64) {
        self.done += n;
        if let Some(i) = &mut self.image {
            i.done += n;
        }
    }

    /// Bytes that will not come after all (a blob that failed part-way, or one not fetched).
    pub fn skip(&mut self, n: u64) {
        self.total = self.total.saturating_sub(n);
        if let Some(i) = &mut self.image {
            i.total = i.total.saturating_sub(n);
        }
    }

    /// Bytes read so far, and per second since `start`.
    pub fn done(&self) -> (u64, u64) {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            (self.done as f64 / secs) as u64
        } else {
            0
        };
        (self.done, rate)
    }

    /// Draw the status line if the last one is older than the interval.
    pub fn tick(&mut self) {
        if self.last_draw.is_some_and(|t| t.elapsed() < self.interval) {
            return;
        }
        let Some(text) = self.status() else { return };
        self.last_draw = Some(Instant::now());
        if self.live {
            let _ = write!(self.out, "\r\x1b[K{text}");
            self.shown = true;
        } else {
            let _ = writeln!(self.out, "{text}");
        }
        let _ = self.out.flush();
    }

    /// Clear the status line (before a permanent line, or at the end).
    pub fn clear(&mut self) {
        if self.shown {
            let _ = write!(self.out, "\r\x1b[K");
            self.shown = false;
        }
    }

    fn status(&self) -> Option<String> {
        let i = self.image.as_ref()?;
        let (_, rate) = self.done();
        Some(format!(
            "{}  {} · all {} · {}/s",
            i.label,
            of(i.done, i.total),
            of(self.done, self.total),
            size(rate)
        ))
    }
}

/// `done/total UNIT (P%)`.
fn of(done: u64, total: u64) -> String {
    let pct = (done.min(total) * 100).checked_div(total).unwrap_or(100);
    format!("{} / {} ({pct}%)", size(done), size(total))
}

/// `1 blob`, `3 blobs`.
pub fn count(n: impl Into<u64>, thing: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// A size for people: bytes, KiB, MiB or GiB with one decimal.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer tests can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(20 * 1024 * 1024), "20.0 MiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
        assert_eq!(
            (count(1u32, "blob"), count(0u32, "blob")),
            ("1 blob".into(), "0 blobs".into())
        );
    }

    #[test]
    fn plain_lines_at_most_every_interval() {
        let sink = Sink::default();
        let mut p = Progress::new(Output {
            writer: Box::new(sink.clone()),
            live: false,
        });
        p.start(4096);
        p.image("[1/1] app/web:v1".into(), 2048);
        p.add(1024);
        p.tick(); // not before the interval has passed once
        p.last_draw = None;
        p.tick();
        p.add(1024);
        p.tick(); // within the interval: not drawn
        p.line("done");
        let text = sink.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with(
                "[1/1] app/web:v1  1.0 KiB / 2.0 KiB (50%) · all 1.0 KiB / 4.0 KiB (25%) · "
            ),
            "{text}"
        );
        assert_eq!(lines[1], "done");
        assert!(!text.contains('\r'));
    }

    #[test]
    fn a_terminal_line_is_redrawn_and_cleared() {
        let sink = Sink::default();
        let mut p = Progress::new(Output {
            writer: Box::new(sink.clone()),
            live: true,
        });
        p.image("x".into(), 10);
        p.tick();
        p.line("kept");
        assert_eq!(
            sink.text().rsplit("\r\x1b[K").next(),
            Some("kept\n"),
            "the status line is cleared before a line that stays"
        );
    }
}
