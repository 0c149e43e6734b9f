//! The one rule for names that may end up in argv or a URL (hosts, services, units, profiles):
//! shared by the config loader and the engine's argument types.

/// Longest name accepted anywhere.
pub const MAX_TOKEN: usize = 128;
pub const TOKEN_PATTERN: &str = "^[A-Za-z0-9_@][A-Za-z0-9_.@:-]*$";

/// Checks a name that may end up in argv or a URL: letters, digits and `_.@:-`, not starting
/// with `-` (it would read as an option), no shell metacharacters, at most 128 bytes.
pub fn check_token(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("must not be empty".into());
    }
    if v.len() > MAX_TOKEN {
        return Err(format!(
            "is {} bytes long; the limit is {MAX_TOKEN}",
            v.len()
        ));
    }
    if v.starts_with('-') {
        return Err(format!(
            "`{v}` starts with `-` and would be read as an option"
        ));
    }
    if let Some(c) = v
        .chars()
        .find(|c| "`$;&|<>()\\\"'*?[]{}~!#\n\r\t ".contains(*c))
    {
        return Err(format!(
            "`{}` contains the shell metacharacter {c:?}",
            v.escape_debug()
        ));
    }
    if let Some(c) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.@:-".contains(*c)))
    {
        return Err(format!(
            "`{}` contains {c:?}; only letters, digits and `_.@:-` are allowed",
            v.escape_debug()
        ));
    }
    Ok(())
}
