//! `df -P -B1 -T PATH...` (run under `LC_ALL=C`): one line per path, sizes in bytes.
//!
//! `-P` keeps each filesystem on one line; `-B1` gives exact bytes; `-T` adds the type.
//! Columns: `Filesystem Type 1-blocks Used Available Capacity Mounted on`. Both the filesystem
//! and the mount point may contain spaces (`lab fs` on `/tmp/rb fix/data dir` is in the
//! fixtures), so a line is anchored on the run of five fields in the middle (type, three
//! numbers, a percentage) rather than split on whitespace.
//!
//! A path that does not exist makes df print `df: /x: No such file or directory` on stderr and
//! exit 1 while still printing the other paths on stdout; this parser sees stdout only, so the
//! caller compares the mounts it got with the paths it asked for.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analyze::ParseError;

const INPUT: &str = "df";

/// One filesystem, as `df -P -B1 -T` reported it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DiskUsage {
    /// Device or source, e.g. `/dev/vda`, `tmpfs`.
    pub filesystem: String,
    /// Filesystem type, e.g. `ext4`, `xfs`, `tmpfs`.
    pub fstype: String,
    /// Size in bytes; absent when df printed `-` (no statistics).
    pub size_bytes: Option<u64>,
    /// Bytes used; absent when df printed `-`.
    pub used_bytes: Option<u64>,
    /// Bytes available to unprivileged users; absent when df printed `-`. Reserved blocks
    /// are why used + available can be less than size.
    pub avail_bytes: Option<u64>,
    /// df's `Capacity`: used / (used + available), rounded up, in percent; absent for `-`.
    pub used_percent: Option<f64>,
    /// Where it is mounted (the mount containing the path asked about).
    pub mounted_on: String,
}

/// Parse `df -P -B1 -T` stdout (the header line is optional).
pub fn parse_df(output: &str) -> Result<Vec<DiskUsage>, ParseError> {
    let mut disks = Vec::new();
    for (index, line) in output.lines().enumerate() {
        if line.trim().is_empty() || (index == 0 && line.starts_with("Filesystem")) {
            continue;
        }
        disks.push(parse_line(line, index + 1)?);
    }
    Ok(disks)
}

fn parse_line(line: &str, number: usize) -> Result<DiskUsage, ParseError> {
    let words = words_with_offsets(line);
    // The percentage is at index 5 or later: at least one word of filesystem, then type,
    // size, used, available. The first position where the pattern fits is the anchor.
    let anchor = (5..words.len())
        .find(|&i| is_percent(words[i].1) && words[i - 3..i].iter().all(|(_, w)| is_count(w)))
        .ok_or_else(|| {
            ParseError::line(
                INPUT,
                number,
                "expected FS TYPE SIZE USED AVAIL PCT% MOUNT",
                line,
            )
        })?;
    let (type_at, fstype) = words[anchor - 4];
    let (pct_at, pct) = words[anchor];
    // df separates the last column by one space; anything after it belongs to the path.
    let after_pct = &line[pct_at + pct.len()..];
    let mounted_on = after_pct.strip_prefix(' ').unwrap_or(after_pct);
    if mounted_on.is_empty() {
        return Err(ParseError::line(INPUT, number, "no mount point", line));
    }
    let count = |i: usize, field: &'static str| -> Result<Option<u64>, ParseError> {
        match words[i].1 {
            "-" => Ok(None),
            w => crate::analyze::error::number(INPUT, number, field, w).map(Some),
        }
    };
    Ok(DiskUsage {
        filesystem: line[..type_at].trim_end().to_string(),
        fstype: fstype.to_string(),
        size_bytes: count(anchor - 3, "1-blocks")?,
        used_bytes: count(anchor - 2, "Used")?,
        avail_bytes: count(anchor - 1, "Available")?,
        used_percent: match pct.strip_suffix('%') {
            Some(digits) => Some(crate::analyze::error::number(
                INPUT, number, "Capacity", digits,
            )?),
            None => None,
        },
        mounted_on: mounted_on.to_string(),
    })
}

/// Whitespace-separated words with their byte offsets in `line`.
fn words_with_offsets(line: &str) -> Vec<(usize, &str)> {
    let mut words = Vec::new();
    let mut start = None;
    for (at, ch) in line.char_indices() {
        match (ch.is_whitespace(), start) {
            (true, Some(s)) => {
                words.push((s, &line[s..at]));
                start = None;
            }
            (false, None) => start = Some(at),
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, &line[s..]));
    }
    words
}

fn is_count(word: &str) -> bool {
    word == "-" || (!word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()))
}

fn is_percent(word: &str) -> bool {
    word == "-"
        || word
            .strip_suffix('%')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_df_of_root_tmp_work_and_shm() {
        let disks = parse_df(include_str!("../fixtures/df_ok.txt")).unwrap();
        assert_eq!(disks.len(), 4);
        assert_eq!(
            disks[0],
            DiskUsage {
                filesystem: "/dev/vda".into(),
                fstype: "ext4".into(),
                size_bytes: Some(270_553_174_016),
                used_bytes: Some(13_197_910_016),
                avail_bytes: Some(84_374_839_296),
                used_percent: Some(14.0),
                mounted_on: "/".into(),
            }
        );
        assert_eq!(disks[3].fstype, "tmpfs");
        assert_eq!(disks[3].mounted_on, "/dev/shm");
        assert_eq!(disks[3].used_percent, Some(0.0));
    }

    #[test]
    fn real_df_with_spaces_in_filesystem_and_mount_point() {
        let disks = parse_df(include_str!("../fixtures/df_spaces.txt")).unwrap();
        let lab = &disks[1];
        assert_eq!(lab.filesystem, "lab fs");
        assert_eq!(lab.fstype, "tmpfs");
        assert_eq!(lab.mounted_on, "/tmp/rb fix/data dir");
        assert_eq!(lab.size_bytes, Some(8_388_608));
        assert_eq!(lab.used_percent, Some(88.0));
    }

    #[test]
    fn real_df_with_a_missing_path_keeps_the_paths_that_exist() {
        let stdout = include_str!("../fixtures/df_missing.stdout.txt");
        let stderr = include_str!("../fixtures/df_missing.stderr.txt");
        let disks = parse_df(stdout).unwrap();
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].mounted_on, "/");
        // The stderr line is not df data, and is rejected if it is ever passed in.
        assert!(parse_df(stderr).is_err());
    }

    #[test]
    fn dashes_and_malformed_lines() {
        let disks = parse_df("proc proc - - - - /proc\n").unwrap();
        assert_eq!((disks[0].size_bytes, disks[0].used_percent), (None, None));
        assert_eq!(disks[0].mounted_on, "/proc");
        assert!(matches!(
            parse_df("Filesystem Type\n/dev/sda1 ext4 10 5 5\n"),
            Err(ParseError::Line { line: 2, .. })
        ));
        assert!(
            parse_df("/dev/sda1 ext4 10 5 5 50%\n").is_err(),
            "no mount point"
        );
        assert!(parse_df("/dev/sda1 ext4 10 99999999999999999999 5 50% /\n").is_err());
        assert_eq!(parse_df("").unwrap(), vec![]);
    }
}
