//! Argument parsing and the validated value types tools take. Parsing goes through
//! `serde_path_to_error`, so every failure names the field (`hosts[0]`, `lines`); the value
//! types reject anything that could be read as shell syntax or as an option.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::ToolError;
pub use crate::config::{MAX_TOKEN, TOKEN_PATTERN, check_token};

/// Parses tool arguments, naming the field on failure.
pub fn parse<T: DeserializeOwned>(args: Map<String, Value>) -> Result<T, ToolError> {
    let de = Value::Object(args);
    serde_path_to_error::deserialize(de).map_err(|e| {
        // The path already ends in the field itself, unknown fields included (`approved`).
        let field = match e.path().to_string() {
            p if p == "." => "(arguments)".to_string(),
            p => p,
        };
        ToolError::invalid(field, e.into_inner().to_string())
    })
}

/// Free text a human will read (a reason, a log pattern): one line of plain text, without
/// control, bidi or zero-width characters (`screen::check_text`), at most 1000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text(String);

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.chars().count() > 1000 {
            return Err(serde::de::Error::custom("is longer than 1000 characters"));
        }
        crate::screen::check_text(&s).map_err(serde::de::Error::custom)?;
        Ok(Text(s))
    }
}

impl JsonSchema for Text {
    fn schema_name() -> Cow<'static, str> {
        "Text".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "maxLength": 1000})
    }
}

/// A validated name (host, service, unit). Its schema carries the pattern so clients can check
/// it too.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name from the code itself (a default), not from input.
    pub(crate) fn trusted(s: &'static str) -> Self {
        Name(s.to_string())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        check_token(&s).map_err(serde::de::Error::custom)?;
        Ok(Name(s))
    }
}

impl JsonSchema for Name {
    fn schema_name() -> Cow<'static, str> {
        "Name".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": TOKEN_PATTERN,
            "maxLength": MAX_TOKEN,
        })
    }
}

/// `hosts`/`services` fields: a list of names, also accepted as one bare name (`"mcp-01"`), a
/// common slip of models and the natural form on the command line (`--arg hosts=mcp-01`).
pub fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Name>>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<Vec<Name>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of names")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            check_token(v).map_err(E::custom)?;
            Ok(Some(vec![Name(v.to_string())]))
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(n) = seq.next_element::<Name>()? {
                out.push(n);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(V)
}

/// Required `hosts` of mutating tools: a list, or one bare name.
pub fn names_required<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Name>, D::Error> {
    Ok(names(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct P {
        #[serde(default, deserialize_with = "names")]
        hosts: Option<Vec<Name>>,
        lines: Option<u32>,
    }

    fn err(v: Value) -> ToolError {
        let Value::Object(m) = v else { panic!() };
        parse::<P>(m).unwrap_err()
    }

    #[test]
    fn errors_name_the_field() {
        let e = err(json!({"hosts": ["mcp-01", "x;reboot"]}));
        assert_eq!(e.field.as_deref(), Some("hosts[1]"));
        assert!(
            e.message.contains("shell metacharacter ';'"),
            "{}",
            e.message
        );

        let e = err(json!({"hosts": ["--help"]}));
        assert_eq!(e.field.as_deref(), Some("hosts[0]"));
        assert!(e.message.contains("would be read as an option"));

        let e = err(json!({"hosts": "a|b"}));
        assert_eq!(e.field.as_deref(), Some("hosts"));
        let Value::Object(m) = json!({"hosts": "mcp-01"}) else {
            panic!()
        };
        let p: P = parse(m).unwrap();
        assert_eq!(p.hosts.unwrap()[0].as_str(), "mcp-01");

        let e = err(json!({"lines": "many"}));
        assert_eq!(e.field.as_deref(), Some("lines"));

        let e = err(json!({"approved": true}));
        assert_eq!(e.field.as_deref(), Some("approved"));
        assert!(e.message.contains("unknown field"));
        assert!(e.to_string().contains("Nothing was run"));
    }

    #[test]
    fn tokens() {
        for ok in [
            "mcp-01",
            "cctelegram-mcp",
            "nginx.service",
            "user@host",
            "a_b:1",
        ] {
            assert!(check_token(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-x",
            "a b",
            "a$(id)",
            "a`b`",
            "a/b",
            "a\nb",
            &"x".repeat(129),
        ] {
            assert!(check_token(bad).is_err(), "{bad}");
        }
    }
}
