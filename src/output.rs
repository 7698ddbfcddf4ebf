//! Everything that prints: kubectl-style tables, json/yaml, and colour. Data goes to stdout,
//! diagnostics to stderr; colour only on a terminal and never with NO_COLOR.

use std::io::{IsTerminal, Write};

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use owo_colors::OwoColorize;
use serde::Serialize;

/// `-o` for commands that print data.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Wide,
    Json,
    Yaml,
}

/// Whether a stream gets colour: a terminal, and NO_COLOR unset (https://no-color.org).
pub fn use_color(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Colour for one stream, decided once.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    color: bool,
}

impl Palette {
    pub fn stdout() -> Self {
        Palette {
            color: use_color(std::io::stdout().is_terminal()),
        }
    }
    pub fn stderr() -> Self {
        Palette {
            color: use_color(std::io::stderr().is_terminal()),
        }
    }
    #[cfg(test)]
    pub fn with_color(color: bool) -> Self {
        Palette { color }
    }
    /// A line a diff adds.
    pub fn added(&self, s: &str) -> String {
        self.paint(s, |s| s.green().to_string())
    }
    /// A line a diff removes.
    pub fn removed(&self, s: &str) -> String {
        self.paint(s, |s| s.red().to_string())
    }
    pub fn warn(&self, s: &str) -> String {
        self.paint(s, |s| s.yellow().to_string())
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint(s, |s| s.dimmed().to_string())
    }
    pub fn bad(&self, s: &str) -> String {
        self.paint(s, |s| s.red().bold().to_string())
    }
    fn paint(&self, s: &str, f: impl Fn(&str) -> String) -> String {
        if self.color { f(s) } else { s.to_string() }
    }
}

/// A table the way `kubectl get` prints one: upper-case headers, no borders, three spaces
/// between columns, no trailing blanks.
pub fn table<S: AsRef<str>>(headers: &[&str], rows: &[Vec<S>]) -> String {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_uppercase()));
    for row in rows {
        t.add_row(row.iter().map(|c| c.as_ref().to_string()));
    }
    let last = headers.len().saturating_sub(1);
    for (i, col) in t.column_iter_mut().enumerate() {
        col.set_padding((0, if i == last { 0 } else { 3 }));
        col.set_cell_alignment(CellAlignment::Left);
    }
    t.lines()
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `1 object`, `2 objects`: a count and its noun, plural when it is not one.
pub fn plural(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// [`plural`] for counts that grow large, with thousands separated: `1 node`, `1,000 nodes`.
pub fn plural_thousands(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{} {noun}s", thousands(n)),
    }
}

/// Serialises data for `-o json|yaml`; json is pretty and ends with a newline.
pub fn structured<T: Serialize>(format: Format, value: &T) -> anyhow::Result<String> {
    Ok(match format {
        Format::Yaml => serde_saphyr::to_string(value)?,
        _ => {
            let mut s = serde_json::to_string_pretty(value)?;
            s.push('\n');
            s
        }
    })
}

/// `println!` for a command's human output, through [`print`]: a closed pipe (`| head`) never
/// stops the work half-way (see [`print`]).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::print(&format!($($arg)*))?
    };
}
pub(crate) use say;

/// `eprintln!` for diagnostics (notes, warnings, the final error): a closed or failing stderr
/// is never a reason to stop, nor to panic as `eprintln!` does.
macro_rules! diag {
    ($($arg:tt)*) => {
        $crate::output::eprint(&format!($($arg)*))
    };
}
pub(crate) use diag;

/// `warning: <text>` on stderr, the prefix in yellow on a terminal.
pub fn warning(text: &str) {
    eprint(&format!("{} {text}", Palette::stderr().warn("warning:")));
}

/// `error: <text>` on stderr, the prefix in red on a terminal.
pub fn error(text: &str) {
    eprint(&format!("{} {text}", Palette::stderr().bad("error:")));
}

static TO_LOG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set once stdout's reader is gone (`| head`): what follows is not written, the work goes on.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on what the commands print goes to the log, a line per event: `reconcile --loop`
/// runs enable's own engine when a class of node comes or goes.
pub fn print_to_log() {
    TO_LOG.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether stdout's reader has gone away: a command that only prints (`status --watch`) stops.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Writes to stdout. A closed pipe (`enable | head -1`) is remembered and the rest of the output
/// dropped, never returned as an error: a command that writes to the cluster must not stop
/// between two applies because nobody reads its progress any more (it finishes, records its
/// revision, and exits as it would have). Any other error (a full disk) is returned.
pub fn print(text: &str) -> std::io::Result<()> {
    if TO_LOG.load(std::sync::atomic::Ordering::Relaxed) {
        // One line per object left as it was would bury what changed.
        let routine = |l: &str| l.ends_with(" unchanged") && l.split(' ').count() == 2;
        for line in text.lines().filter(|l| !l.trim().is_empty() && !routine(l)) {
            tracing::info!("{line}");
        }
        return Ok(());
    }
    if stdout_closed() {
        return Ok(());
    }
    let written = (|| {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            out.write_all(b"\n")?;
        }
        out.flush()
    })();
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
        other => other,
    }
}

/// Writes a line to stderr, ignoring a closed or failing stderr (see [`diag!`]).
pub fn eprint(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = err.write_all(b"\n");
    }
    let _ = err.flush();
}

/// A question on stderr, the answer typed on the same line.
pub fn prompt(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// Text as a terminal shows it, without colour codes (for tests of coloured output).
#[cfg(test)]
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\u{1b}') => esc = true,
            (true, 'm') => esc = false,
            (false, c) => out.push(c),
            _ => {}
        }
    }
    out
}

/// kubectl's AGE: `45s`, `5m12s`, `3h4m`, `2d5h`, `12d`.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        format!("{m}m{}s", s % 60)
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        format!("{h}h{}m", m % 60)
    } else if h < 48 {
        format!("{h}h")
    } else if d < 8 {
        format!("{d}d{}h", h % 24)
    } else {
        format!("{d}d")
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A word of a printed command as a POSIX shell reads it back: as it is when it is plain, else in single quotes.
pub fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(plural(1, "object"), "1 object");
        assert_eq!(plural(0, "object"), "0 objects");
        assert_eq!(plural(2, "node"), "2 nodes");
        assert_eq!(plural_thousands(1, "node"), "1 node");
        assert_eq!(plural_thousands(1_000, "node"), "1,000 nodes");
    }

    #[test]
    fn table_looks_like_kubectl_get() {
        let out = table(
            &["name", "ready", "status"],
            &[
                vec!["prometheus-operator", "1/1", "Healthy"],
                vec!["node-exporter", "11/12", "1 node not covered"],
            ],
        );
        let want = "\
NAME                  READY   STATUS
prometheus-operator   1/1     Healthy
node-exporter         11/12   1 node not covered";
        assert_eq!(out, want);
    }

    #[test]
    fn table_pads_around_colour_codes_by_visible_width() {
        let p = Palette { color: true };
        let out = table(
            &["a", "b"],
            &[
                vec![p.warn("ok"), "x".into()],
                vec!["long".into(), "y".into()],
            ],
        );
        let lines: Vec<_> = out.lines().collect();
        // "ok" is 2 wide on screen, "long" 4: the second column starts at the same place.
        assert_eq!(strip_ansi(lines[1]), "ok     x");
        assert_eq!(strip_ansi(lines[2]), "long   y");
    }

    #[test]
    fn yaml_and_json_round_trip() {
        #[derive(Serialize)]
        struct V {
            name: &'static str,
            count: u32,
        }
        let v = V {
            name: "x",
            count: 3,
        };
        assert_eq!(
            structured(Format::Json, &v).unwrap(),
            "{\n  \"name\": \"x\",\n  \"count\": 3\n}\n"
        );
        assert_eq!(structured(Format::Yaml, &v).unwrap(), "name: x\ncount: 3\n");
    }
}
