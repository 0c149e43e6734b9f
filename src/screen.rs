//! What reaches a human's screen (an approval prompt, `runbook-mcp approvals`, the stderr ring,
//! `audit show`). Text a caller sends is refused when it could forge what the human sees —
//! control characters (C0, C1 such as U+009B, the 8-bit CSI), line breaks (U+2028/2029
//! included), bidi overrides and isolates, zero-width characters — and anything rendered to a
//! terminal is escaped, whatever its source (client names, remote error text).

/// Why `c` may not appear in text a human reads, if it may not.
fn forbidden(c: char) -> Option<&'static str> {
    match c {
        '\n' | '\r' | '\u{0085}' | '\u{2028}' | '\u{2029}' => Some("a line break"),
        c if c.is_control() => Some("a control character"),
        '\u{061C}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => Some("a bidi control"),
        '\u{200B}'..='\u{200D}'
        | '\u{2060}'..='\u{2064}'
        | '\u{FEFF}'
        | '\u{180E}'
        | '\u{00AD}'
        | '\u{3164}'
        | '\u{115F}'
        | '\u{1160}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{E0000}'..='\u{E007F}' => Some("an invisible character"),
        _ => None,
    }
}

/// Refuses text holding anything that could forge what a human is shown.
pub fn check_text(v: &str) -> Result<(), String> {
    match v.chars().find_map(|c| forbidden(c).map(|why| (c, why))) {
        Some((c, why)) => Err(format!(
            "contains {why} (U+{:04X}); one line of plain text only: it is shown to the approver",
            c as u32
        )),
        None => Ok(()),
    }
}

/// Refuses a message's text (a notification) holding anything but plain lines: line feeds
/// are allowed, every other forbidden character is not.
pub fn check_message(v: &str) -> Result<(), String> {
    match v
        .chars()
        .filter(|&c| c != '\n')
        .find_map(|c| forbidden(c).map(|why| (c, why)))
    {
        Some((c, why)) => Err(format!(
            "contains {why} (U+{:04X}); plain text and line feeds only: people read it",
            c as u32
        )),
        None => Ok(()),
    }
}

/// The text with every forbidden character written as `\u{XXXX}`: safe to print.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\\' {
            // So a literal `\u{000A}` in the text never reads like an escaped line break.
            out.push_str("\\\\");
        } else if forbidden(c).is_some() {
            out.push_str(&format!("\\u{{{:04X}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_plans_and_hidden_text_are_refused_and_escaped() {
        let forged =
            "disk full\nPlan:\n  - mcp-02: systemctl status cctelegram-mcp (read only)\n\x1b[8m";
        assert!(check_text(forged).unwrap_err().contains("line break"));
        for bad in [
            "a\x1b[8m",
            "a\u{9b}8m",
            "a\u{2028}b",
            "a\u{2029}b",
            "a\u{202E}b",
            "a\u{2067}b",
            "a\u{200B}b",
            "a\u{FEFF}",
            "a\tb",
            "a\rb",
            "a\u{0085}",
        ] {
            assert!(check_text(bad).is_err(), "{bad:?}");
            assert!(
                !escape(bad).chars().any(|c| forbidden(c).is_some()),
                "{bad:?}"
            );
        }
        assert!(check_text("disk 95% full on mcp-02 — é, ü, 日本").is_ok());
        assert_eq!(escape("x\x1b[8my"), "x\\u{001B}[8my");
        assert_eq!(escape("ok"), "ok");
        assert_eq!(
            escape(r"a\u{000A}b"),
            r"a\\u{000A}b",
            "a backslash is escaped too"
        );
        for hidden in [
            "a\u{00AD}b",
            "a\u{E0041}b",
            "a\u{2062}b",
            "a\u{FE0F}b",
            "a\u{3164}b",
        ] {
            assert!(check_text(hidden).is_err(), "{hidden:?}");
        }
    }
}
