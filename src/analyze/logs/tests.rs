use super::*;

const APPLICATION: &str = include_str!("../fixtures/logs_application.jsonl");
const SECURITY: &str = include_str!("../fixtures/logs_security.jsonl");
const SUPERVISORD: &str = include_str!("../fixtures/logs_supervisord.txt");
const NGINX: &str = include_str!("../fixtures/logs_nginx_error.txt");
const LOGFMT: &str = include_str!("../fixtures/logs_node_exporter_logfmt.txt");
const PROMETHEUS_JSON: &str = include_str!("../fixtures/logs_prometheus_json.jsonl");

fn all(text: &str) -> Vec<LogLine> {
    text.lines().map(parse_line).collect()
}

#[test]
fn real_json_application_log() {
    let lines = all(APPLICATION);
    let levels: Vec<_> = lines.iter().map(|l| l.level).collect();
    assert_eq!(
        levels,
        vec![
            Some(Level::Info),
            Some(Level::Debug),
            Some(Level::Info),
            Some(Level::Warn),
            Some(Level::Error)
        ]
    );
    let failed = &lines[4];
    assert_eq!(failed.message, "Failed to deliver message");
    assert_eq!(
        failed.timestamp.as_deref(),
        Some("2026-11-26T20:42:33.035Z")
    );
    assert!(is_error(failed));
    assert_eq!(duration(failed), Some(5003.0));
    assert_eq!(lines.iter().filter(|l| is_error(l)).count(), 1);
    assert_eq!(
        lines.iter().filter_map(duration).sum::<f64>(),
        3.0 + 142.0 + 2412.0 + 5003.0
    );
    assert_eq!(failed.raw, APPLICATION.lines().nth(4).unwrap());
}

#[test]
fn real_json_security_log() {
    let lines = all(SECURITY);
    let events: Vec<_> = lines.iter().filter(|l| is_security_event(l)).collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind.as_deref(), Some("SECURITY"));
    assert_eq!(client_ip(events[0]), Some("203.0.113.7"));
    assert!(events[0].message.contains("RATE_LIMIT_EXCEEDED"));
    assert_eq!(client_ip(&lines[2]), Some("127.0.0.1"));
    assert!(!is_security_event(&lines[2]));
}

#[test]
fn real_json_with_other_key_names() {
    let line = parse_line(PROMETHEUS_JSON.lines().next().unwrap());
    assert_eq!(line.level, Some(Level::Error));
    assert_eq!(line.timestamp.as_deref(), Some("2026-11-26T20:42:34.860Z"));
    assert_eq!(
        line.message,
        "Error loading config (--config.file=/nonexistent.yml)"
    );
}

#[test]
fn real_supervisord_log() {
    let lines = all(SUPERVISORD);
    let first = &lines[0];
    assert_eq!(first.timestamp.as_deref(), Some("2026-11-26 20:39:48,695"));
    assert_eq!(first.level, Some(Level::Critical));
    assert!(first.message.starts_with("Supervisor is running as root."));
    let warn = lines.iter().find(|l| l.level == Some(Level::Warn)).unwrap();
    assert_eq!(warn.message, "exited: crashy (exit status 1; not expected)");
    assert!(
        lines
            .iter()
            .all(|l| l.level.is_some() && l.timestamp.is_some())
    );
    assert_eq!(
        lines.iter().filter(|l| is_error(l)).count(),
        2,
        "the two CRIT lines"
    );
}

#[test]
fn real_nginx_error_log() {
    let lines = all(NGINX);
    let errors: Vec<_> = lines.iter().filter(|l| is_error(l)).collect();
    assert_eq!(errors.len(), 4);
    assert_eq!(errors[0].timestamp.as_deref(), Some("2026/11/26 20:42:25"));
    assert!(
        errors[0]
            .message
            .starts_with("9986#9986: *1 connect() failed (111: Connection refused)")
    );
    assert!(errors[1].message.contains("limiting requests"));
    assert_eq!(lines[0].level, Some(Level::Info), "[notice]");
}

#[test]
fn real_logfmt_lines() {
    let lines = all(LOGFMT);
    assert_eq!(
        lines[0].timestamp.as_deref(),
        Some("2026-11-26T20:41:35.670Z")
    );
    assert_eq!(lines[0].level, Some(Level::Info));
    assert_eq!(lines[0].message, "Starting node_exporter");
    assert_eq!(lines[2].level, Some(Level::Warn));
    assert!(
        lines[2]
            .message
            .starts_with("Node Exporter is running as root user.")
    );
}

#[test]
fn plain_text_rules() {
    let line = parse_line("2026-11-26 10:00:01 ERROR something broke\n");
    assert_eq!(line.timestamp.as_deref(), Some("2026-11-26 10:00:01"));
    assert_eq!(line.level, Some(Level::Error));
    assert_eq!(line.message, "something broke");
    assert_eq!(line.raw, "2026-11-26 10:00:01 ERROR something broke");

    let syslog = parse_line("Nov 26 20:42:25 mcp-01 cctelegram[812]: FATAL out of memory");
    assert_eq!(syslog.timestamp.as_deref(), Some("Nov 26 20:42:25"));
    assert_eq!(syslog.level, Some(Level::Critical));

    let quiet = parse_line("user said there was no error here");
    assert_eq!((quiet.level, quiet.timestamp.as_deref()), (None, None));
    assert_eq!(quiet.message, "user said there was no error here");
    assert!(!is_error(&quiet));

    assert_eq!(
        parse_line("INFO: retrying after ERROR").level,
        Some(Level::Info),
        "first wins"
    );
    assert_eq!(parse_line("x WARNING: disk").level, Some(Level::Warn));
    assert_eq!(parse_line("").message, "");
    // Not JSON after all: read as text, never an error.
    let broken = parse_line("{\"level\":\"error\",");
    assert_eq!(broken.level, None);
    assert_eq!(broken.message, "{\"level\":\"error\",");
}

#[test]
fn json_variants() {
    let pino = parse_line(r#"{"level":50,"time":1700000000000,"msg":"boom"}"#);
    assert_eq!(pino.level, Some(Level::Error));
    assert_eq!(pino.timestamp.as_deref(), Some("1700000000000"));
    assert_eq!(pino.message, "boom");
    let odd = parse_line(r#"{"level":["x"],"context":{"duration":"12.5"}}"#);
    assert_eq!(odd.level, None);
    assert_eq!(duration(&odd), Some(12.5));
    assert_eq!(parse_line("[1,2]").context, None);
    assert_eq!(
        parse_line(r#"{"severity":"CRITICAL","message":"x"}"#).level,
        Some(Level::Critical)
    );
}

#[test]
fn level_order_and_words() {
    assert!(Level::Debug < Level::Info && Level::Info < Level::Warn);
    assert!(Level::Warn < Level::Error && Level::Error < Level::Critical);
    assert_eq!(Level::from_word("FATAL"), Some(Level::Critical));
    assert_eq!(Level::from_word("Warning"), Some(Level::Warn));
    assert_eq!(Level::from_word("ERRO"), Some(Level::Error));
    assert_eq!(Level::from_word("verbose"), None);
    assert_eq!(serde_json::to_value(Level::Critical).unwrap(), "critical");
}
