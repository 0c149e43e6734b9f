//! The text a model reads: a compact digest of a result (DESIGN §9). Claude Code hands the model
//! the text content, not `structuredContent`, and saves a result over 50,000 characters to a
//! file — so every problem is named here, the healthy rest collapses into one line, and the
//! whole typed result stays in `structuredContent`.
//!
//! Shape: a headline; problems, worst first, one line each; `ok:` lines for what is healthy;
//! key figures; `next:` the call to make. Each part is bounded, and [`cap`] bounds the whole.

/// No text result is longer than this (the engine cuts longer ones, saying so).
pub const MAX_TEXT: usize = 40_000;
/// Problem lines shown before "… N more"; the rest are in `structuredContent`.
const MAX_PROBLEMS: usize = 60;
/// Host names listed in one collapsed line before the count takes over.
const MAX_NAMES: usize = 12;

/// A digest under construction.
#[derive(Debug, Default)]
pub struct Digest {
    head: String,
    problems: Vec<String>,
    ok: Vec<String>,
    figures: Vec<String>,
    next: Vec<String>,
}

impl Digest {
    pub fn new(head: impl Into<String>) -> Self {
        Self {
            head: head.into(),
            ..Self::default()
        }
    }

    /// A problem, one line; call in worst-first order.
    pub fn problem(&mut self, line: impl Into<String>) -> &mut Self {
        self.problems.push(one_line(line.into()));
        self
    }

    /// Something healthy, collapsed (e.g. `mcp-02, mcp-03: ok (3/3 services, health 3/3)`).
    pub fn ok(&mut self, line: impl Into<String>) -> &mut Self {
        self.ok.push(one_line(line.into()));
        self
    }

    /// A key figure (`p95 212 ms`, `5xx 3.1%`).
    pub fn figure(&mut self, line: impl Into<String>) -> &mut Self {
        self.figures.push(one_line(line.into()));
        self
    }

    /// What to call next; at most a few, most useful first.
    pub fn next(&mut self, line: impl Into<String>) -> &mut Self {
        let line = one_line(line.into());
        if !self.next.contains(&line) {
            self.next.push(line);
        }
        self
    }

    pub fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    pub fn render(&self) -> String {
        let mut s = self.head.clone();
        let shown = self.problems.len().min(MAX_PROBLEMS);
        for p in &self.problems[..shown] {
            s.push_str("\n- ");
            s.push_str(p);
        }
        if self.problems.len() > shown {
            s.push_str(&format!(
                "\n- … {} more problem(s) in structuredContent (narrow with `hosts`)",
                self.problems.len() - shown
            ));
        }
        for o in &self.ok {
            s.push_str("\nok: ");
            s.push_str(o);
        }
        if !self.figures.is_empty() {
            s.push_str("\nfigures: ");
            s.push_str(&self.figures.join("; "));
        }
        for (i, n) in self.next.iter().take(4).enumerate() {
            s.push_str(if i == 0 { "\nnext: " } else { "; " });
            s.push_str(n);
        }
        cap(s)
    }
}

/// Names in one line: all of them up to a dozen, then the first ones and the count.
pub fn names<S: AsRef<str>>(names: &[S]) -> String {
    let all: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    if all.len() <= MAX_NAMES {
        return all.join(", ");
    }
    format!(
        "{} … {} ({} hosts)",
        all[..3].join(", "),
        all[all.len() - 1],
        all.len()
    )
}

/// Bounds a text at [`MAX_TEXT`] characters, on a character boundary, saying where the rest is.
pub fn cap(mut s: String) -> String {
    if s.chars().count() <= MAX_TEXT {
        return s;
    }
    const NOTE: &str = "\n… (text cut at 40,000 characters; the whole result is in \
        structuredContent; narrow the call with `hosts`, `limit` or `detail`)";
    let keep = MAX_TEXT - NOTE.chars().count();
    let end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    s.truncate(end);
    s.push_str(NOTE);
    s
}

/// Line breaks inside an item would break the digest's one-item-per-line shape.
fn one_line(s: String) -> String {
    if s.contains(['\n', '\r']) {
        s.replace(['\n', '\r'], " ")
    } else {
        s
    }
}

/// At most `max` characters of `s`, marked when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max).collect();
    t.push('…');
    t
}

/// A byte count for people: `512 MiB`, `1.5 GiB`.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut u = 0;
    while v.abs() >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 || v >= 100.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_come_first_and_the_healthy_collapse() {
        let mut d = Digest::new("CRITICAL: 3 hosts");
        d.problem("mcp-01: cctelegram-mcp: down")
            .ok("mcp-02, mcp-03: ok")
            .figure("p95 20 ms")
            .next("restart_service");
        assert_eq!(
            d.render(),
            "CRITICAL: 3 hosts\n- mcp-01: cctelegram-mcp: down\nok: mcp-02, mcp-03: ok\n\
             figures: p95 20 ms\nnext: restart_service"
        );
    }

    #[test]
    fn long_texts_are_cut_on_a_char_boundary_and_say_so() {
        let s = cap("é".repeat(MAX_TEXT + 10));
        assert!(s.chars().count() <= MAX_TEXT, "{}", s.chars().count());
        assert!(s.ends_with("`detail`)"));
        let mut d = Digest::new("h");
        for i in 0..100 {
            d.problem(format!("p{i}\nsecond line"));
        }
        let r = d.render();
        assert!(r.contains("… 40 more problem(s)"), "{r}");
        assert!(!r.contains("\nsecond line"));
    }

    #[test]
    fn many_names_become_a_count() {
        let hosts: Vec<String> = (1..=40).map(|i| format!("mcp-{i:02}")).collect();
        assert_eq!(names(&hosts), "mcp-01, mcp-02, mcp-03 … mcp-40 (40 hosts)");
        assert_eq!(names(&["a", "b"]), "a, b");
        assert_eq!(bytes(512.0 * 1024.0 * 1024.0), "512 MiB");
        assert_eq!(bytes(1536.0 * 1024.0 * 1024.0), "1.5 GiB");
    }
}
