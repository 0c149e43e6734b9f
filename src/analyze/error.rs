//! The one error type of the parsers: it names the input, the line and the field that failed,
//! so a tool can report "df: line 3: field `Available`: not a number" instead of a panic or a
//! silently wrong value.

/// Longest excerpt of the offending text kept in an error. Remote output can be arbitrarily
/// long (a binary file cat'ed by mistake); an error message must stay readable.
const MAX_EXCERPT: usize = 120;

/// Why a parser rejected its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The input had nothing in it where something was required.
    #[error("{input}: empty output")]
    Empty {
        /// What was being parsed (a command or file name, e.g. `df`, `/proc/meminfo`).
        input: &'static str,
    },
    /// A line did not have the expected shape.
    #[error("{input}: line {line}: {reason} (got {text:?})")]
    Line {
        /// What was being parsed.
        input: &'static str,
        /// 1-based line number.
        line: usize,
        /// What was expected.
        reason: String,
        /// The line, shortened.
        text: String,
    },
    /// A field on a line could not be read.
    #[error("{input}: line {line}: field `{field}`: {reason} (got {value:?})")]
    Field {
        /// What was being parsed.
        input: &'static str,
        /// 1-based line number.
        line: usize,
        /// The field's name.
        field: &'static str,
        /// What was expected.
        reason: String,
        /// The field's text, shortened.
        value: String,
    },
    /// The input as a whole is wrong (invalid JSON, missing required key, wrong count).
    #[error("{input}: {reason}")]
    Document {
        /// What was being parsed.
        input: &'static str,
        /// What went wrong.
        reason: String,
    },
}

impl ParseError {
    pub(crate) fn line(
        input: &'static str,
        line: usize,
        reason: impl Into<String>,
        text: &str,
    ) -> Self {
        Self::Line {
            input,
            line,
            reason: reason.into(),
            text: excerpt(text),
        }
    }

    pub(crate) fn field(
        input: &'static str,
        line: usize,
        field: &'static str,
        reason: impl Into<String>,
        value: &str,
    ) -> Self {
        Self::Field {
            input,
            line,
            field,
            reason: reason.into(),
            value: excerpt(value),
        }
    }

    pub(crate) fn document(input: &'static str, reason: impl Into<String>) -> Self {
        Self::Document {
            input,
            reason: reason.into(),
        }
    }
}

/// Cut `text` to at most [`MAX_EXCERPT`] characters (on a char boundary).
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(MAX_EXCERPT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Parse a number field, turning failure into a [`ParseError::Field`].
pub(crate) fn number<T: std::str::FromStr>(
    input: &'static str,
    line: usize,
    field: &'static str,
    value: &str,
) -> Result<T, ParseError> {
    value
        .parse()
        .map_err(|_| ParseError::field(input, line, field, "not a number", value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_shortened_on_a_char_boundary() {
        let text = "é".repeat(500);
        let ParseError::Line { text: kept, .. } = ParseError::line("x", 1, "bad", &text) else {
            panic!("wrong variant");
        };
        assert_eq!(kept.chars().count(), MAX_EXCERPT + 1);
        assert!(kept.ends_with('…'));
    }

    #[test]
    fn messages_name_input_line_and_field() {
        let err = number::<u64>("df", 3, "Available", "lots").unwrap_err();
        assert_eq!(
            err.to_string(),
            "df: line 3: field `Available`: not a number (got \"lots\")"
        );
    }
}
