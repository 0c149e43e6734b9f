//! Prometheus HTTP API answers (`/api/v1/query`, `/api/v1/query_range`) as typed values.
//!
//! Prometheus sends sample values as strings because JSON has no NaN or infinities:
//! `"1"`, `"0.0656"`, `"NaN"`, `"+Inf"`, `"-Inf"`. They are read into `f64` and written back
//! out by [`PromValue`] as a JSON number when finite and as that same string when not, so a
//! tool's output never turns NaN into `null`. An answer with `"status":"error"` is a valid
//! answer (bad PromQL, a bad time range) and parses to [`PromResponse::Error`]; only text that
//! is not a Prometheus answer at all is a [`ParseError`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::ParseError;

const INPUT: &str = "prometheus response";

/// A sample value: a number, or NaN / +Inf / -Inf, which JSON cannot hold as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct PromValue(pub f64);

impl Serialize for PromValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            v if v.is_finite() => serializer.serialize_f64(v),
            v if v.is_nan() => serializer.serialize_str("NaN"),
            v if v > 0.0 => serializer.serialize_str("+Inf"),
            _ => serializer.serialize_str("-Inf"),
        }
    }
}

impl JsonSchema for PromValue {
    fn schema_name() -> Cow<'static, str> {
        "PromValue".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A sample value: a number, or \"NaN\", \"+Inf\" or \"-Inf\".",
            "oneOf": [
                { "type": "number", "description": "A finite value." },
                {
                    "type": "string",
                    "enum": ["NaN", "+Inf", "-Inf"],
                    "description": "Not a number, or an infinity (e.g. a division by zero)."
                }
            ]
        })
    }
}

/// Read a Prometheus float: decimal or exponent notation, `NaN`, `+Inf`, `-Inf`, `Inf`.
pub fn parse_prom_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        // Rust would also take "inf", "infinity" and "nan" in any case; Prometheus never
        // writes those, so they are refused rather than guessed at.
        _ if text
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            None
        }
        _ => text.parse().ok(),
    }
}

/// One point: a Unix time in seconds and a value.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema, PartialEq)]
pub struct Point {
    /// Unix time in seconds (fractional).
    pub timestamp: f64,
    /// The value at that time.
    pub value: PromValue,
}

/// One series of an instant query (`vector`).
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct InstantSeries {
    /// The series' labels, `__name__` included when the result kept it.
    pub labels: BTreeMap<String, String>,
    /// Its value at the query time.
    pub point: Point,
}

/// One series of a range query or range selector (`matrix`).
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct RangeSeries {
    /// The series' labels.
    pub labels: BTreeMap<String, String>,
    /// Its values, oldest first.
    pub points: Vec<Point>,
}

/// The data of a successful query, by result type.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
#[serde(tag = "result_type", rename_all = "snake_case")]
pub enum PromData {
    /// One value per series (an instant query of an instant vector).
    Vector {
        /// The series; empty when nothing matched.
        series: Vec<InstantSeries>,
    },
    /// Many values per series (a range query, or an instant query of a range selector).
    Matrix {
        /// The series; empty when nothing matched.
        series: Vec<RangeSeries>,
    },
    /// One number, e.g. `scalar(sum(up))`.
    Scalar {
        /// The value and its time.
        point: Point,
    },
    /// One string literal.
    String {
        /// Unix time in seconds.
        timestamp: f64,
        /// The string.
        value: String,
    },
}

/// A Prometheus API answer.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PromResponse {
    /// The query ran.
    Success {
        /// What it returned.
        data: PromData,
        /// Warnings and informational notes Prometheus attached (e.g. a partial result).
        warnings: Vec<String>,
    },
    /// Prometheus refused or failed the query.
    Error {
        /// `bad_data` (invalid query or parameters), `timeout`, `canceled`, `execution`,
        /// `unavailable`, `internal`, `not_found`.
        error_type: String,
        /// Prometheus's message, e.g. `parse error: unclosed left parenthesis`.
        error: String,
    },
}

#[derive(Deserialize)]
struct RawResponse {
    status: String,
    data: Option<RawData>,
    #[serde(rename = "errorType", default)]
    error_type: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    infos: Vec<String>,
}

#[derive(Deserialize)]
struct RawData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Option<(f64, String)>,
    values: Option<Vec<(f64, String)>>,
}

/// Parse the JSON body of `/api/v1/query` or `/api/v1/query_range`.
pub fn parse_response(body: &str) -> Result<PromResponse, ParseError> {
    let raw: RawResponse = serde_json::from_str(body)
        .map_err(|e| ParseError::document(INPUT, format!("not a Prometheus API answer: {e}")))?;
    match raw.status.as_str() {
        "success" => {}
        "error" => {
            return Ok(PromResponse::Error {
                error_type: raw.error_type,
                error: raw.error,
            });
        }
        other => {
            return Err(ParseError::document(
                INPUT,
                format!("unknown status {other:?}"),
            ));
        }
    }
    let data = raw
        .data
        .ok_or_else(|| ParseError::document(INPUT, "success without data"))?;
    let mut warnings = raw.warnings;
    warnings.extend(raw.infos);
    Ok(PromResponse::Success {
        data: parse_data(data)?,
        warnings,
    })
}

fn parse_data(data: RawData) -> Result<PromData, ParseError> {
    let RawData {
        result_type,
        result,
    } = data;
    let bad =
        |e: serde_json::Error| ParseError::document(INPUT, format!("{result_type} result: {e}"));
    Ok(match result_type.as_str() {
        "vector" => {
            let raw: Vec<RawSeries> = serde_json::from_value(result).map_err(bad)?;
            let series = raw
                .into_iter()
                .map(|s| {
                    // Native histogram samples carry `histogram` instead of `value`.
                    let value = s.value.ok_or_else(|| {
                        ParseError::document(
                            INPUT,
                            "a vector sample without `value` (native histograms are not supported)",
                        )
                    })?;
                    Ok(InstantSeries {
                        labels: s.metric,
                        point: point(value)?,
                    })
                })
                .collect::<Result<_, ParseError>>()?;
            PromData::Vector { series }
        }
        "matrix" => {
            let raw: Vec<RawSeries> = serde_json::from_value(result).map_err(bad)?;
            let series = raw
                .into_iter()
                .map(|s| {
                    let points = s
                        .values
                        .unwrap_or_default()
                        .into_iter()
                        .map(point)
                        .collect::<Result<_, _>>()?;
                    Ok(RangeSeries {
                        labels: s.metric,
                        points,
                    })
                })
                .collect::<Result<_, ParseError>>()?;
            PromData::Matrix { series }
        }
        "scalar" => {
            let raw: (f64, String) = serde_json::from_value(result).map_err(bad)?;
            PromData::Scalar { point: point(raw)? }
        }
        "string" => {
            let (timestamp, value): (f64, String) = serde_json::from_value(result).map_err(bad)?;
            PromData::String { timestamp, value }
        }
        other => {
            return Err(ParseError::document(
                INPUT,
                format!("unknown resultType {other:?}"),
            ));
        }
    })
}

fn point((timestamp, text): (f64, String)) -> Result<Point, ParseError> {
    let value = parse_prom_float(&text).ok_or_else(|| {
        ParseError::document(INPUT, format!("sample value {text:?} is not a number"))
    })?;
    Ok(Point {
        timestamp,
        value: PromValue(value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(body: &str) -> PromData {
        match parse_response(body).unwrap() {
            PromResponse::Success { data, .. } => data,
            other => panic!("not a success: {other:?}"),
        }
    }

    #[test]
    fn real_instant_vector() {
        let PromData::Vector { series } = data(include_str!("fixtures/prom_query_vector.json"))
        else {
            panic!("not a vector");
        };
        assert_eq!(series.len(), 3);
        assert_eq!(series[2].labels["host"], "mcp-02");
        assert_eq!(series[2].labels["__name__"], "up");
        assert_eq!(series[2].point.value, PromValue(0.0));
        assert_eq!(series[0].point.timestamp, 1_795_725_710.505);
        let PromData::Vector { series } = data(include_str!("fixtures/prom_query_rate.json"))
        else {
            panic!("not a vector");
        };
        assert_eq!(series[0].point.value, PromValue(0.065_608_333_333_333_34));
        assert_eq!(series[0].labels["handler"], "/metrics");
    }

    #[test]
    fn real_empty_vector() {
        assert_eq!(
            data(include_str!("fixtures/prom_query_vector_empty.json")),
            PromData::Vector { series: vec![] }
        );
    }

    #[test]
    fn real_nan_values_stay_nan_and_serialize_as_strings() {
        let PromData::Vector { series } = data(include_str!("fixtures/prom_query_vector_nan.json"))
        else {
            panic!("not a vector");
        };
        assert!(series.iter().all(|s| s.point.value.0.is_nan()));
        assert!(
            !series[0].labels.contains_key("__name__"),
            "arithmetic drops the name"
        );
        let json = serde_json::to_value(&series[0]).unwrap();
        assert_eq!(json["point"]["value"], "NaN");

        let PromData::Matrix { series } = data(include_str!("fixtures/prom_query_range_nan.json"))
        else {
            panic!("not a matrix");
        };
        assert_eq!(series[0].points.len(), 3);
        assert!(series[0].labels.is_empty());
    }

    #[test]
    fn real_matrices_from_range_query_and_range_selector() {
        let PromData::Matrix { series } =
            data(include_str!("fixtures/prom_query_range_matrix.json"))
        else {
            panic!("not a matrix");
        };
        assert_eq!(series.len(), 3);
        assert_eq!(series[1].points.len(), 5);
        assert_eq!(
            series[1].points[0],
            Point {
                timestamp: 1_795_725_702.0,
                value: PromValue(1.0)
            }
        );
        let PromData::Matrix { series } =
            data(include_str!("fixtures/prom_query_matrix_instant.json"))
        else {
            panic!("not a matrix");
        };
        assert_eq!(series[2].points.iter().map(|p| p.value.0).sum::<f64>(), 0.0);
    }

    #[test]
    fn real_scalars_including_infinities_and_a_string() {
        assert_eq!(
            data(include_str!("fixtures/prom_query_scalar.json")),
            PromData::Scalar {
                point: Point {
                    timestamp: 1_795_725_710.535,
                    value: PromValue(2.0)
                }
            }
        );
        let PromData::Scalar { point } = data(include_str!("fixtures/prom_query_scalar_inf.json"))
        else {
            panic!("not a scalar");
        };
        assert_eq!(point.value.0, f64::INFINITY);
        assert_eq!(serde_json::to_value(point).unwrap()["value"], "+Inf");
        let PromData::Scalar { point } =
            data(include_str!("fixtures/prom_query_scalar_neg_inf.json"))
        else {
            panic!("not a scalar");
        };
        assert_eq!(serde_json::to_value(point).unwrap()["value"], "-Inf");
        assert_eq!(
            data(include_str!("fixtures/prom_query_string.json")),
            PromData::String {
                timestamp: 1_795_725_710.561,
                value: "hello runbook".into()
            }
        );
    }

    #[test]
    fn real_error_answers() {
        assert_eq!(
            parse_response(include_str!("fixtures/prom_query_error_bad_data.json")).unwrap(),
            PromResponse::Error {
                error_type: "bad_data".into(),
                error: "invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"
                    .into(),
            }
        );
        let PromResponse::Error { error, .. } =
            parse_response(include_str!("fixtures/prom_query_range_error.json")).unwrap()
        else {
            panic!("not an error");
        };
        assert!(error.contains("end timestamp must not be before start time"));
    }

    #[test]
    fn warnings_are_kept_and_garbage_is_an_error() {
        let body = r#"{"status":"success","warnings":["partial"],"infos":["not a counter"],
                       "data":{"resultType":"vector","result":[]}}"#;
        let PromResponse::Success { warnings, .. } = parse_response(body).unwrap() else {
            panic!("not a success");
        };
        assert_eq!(warnings, vec!["partial", "not a counter"]);
        assert!(parse_response("<html>502 Bad Gateway</html>").is_err());
        assert!(parse_response(r#"{"status":"success"}"#).is_err());
        assert!(parse_response(r#"{"status":"weird"}"#).is_err());
        let bad_value =
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"lots"]}}"#;
        assert!(parse_response(bad_value).is_err());
        let bad_type = r#"{"status":"success","data":{"resultType":"tensor","result":[]}}"#;
        assert!(parse_response(bad_type).is_err());
        let histogram = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{}]}]}}"#;
        assert!(parse_response(histogram).is_err());
    }

    #[test]
    fn prometheus_float_spellings() {
        assert_eq!(parse_prom_float("1e-3"), Some(0.001));
        assert_eq!(parse_prom_float("-Inf"), Some(f64::NEG_INFINITY));
        assert!(parse_prom_float("NaN").unwrap().is_nan());
        assert_eq!(parse_prom_float("infinity"), None);
        assert_eq!(parse_prom_float(""), None);
        assert_eq!(parse_prom_float("0x10"), None);
    }
}
