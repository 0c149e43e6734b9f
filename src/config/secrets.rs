//! Named secrets. Values are read once at load time from an environment variable or a file and
//! are only handed out to the code that sends them (HTTP headers); [`Secrets::mask`] removes
//! every known value from any text before it leaves the server.

use std::collections::BTreeMap;
use std::fmt;

/// The loaded secrets. `Debug` never prints a value.
#[derive(Default, Clone)]
pub struct Secrets {
    values: BTreeMap<String, Result<String, String>>,
}

/// Shortest value that is masked; shorter strings would mask ordinary words.
const MIN_MASKED_LEN: usize = 4;

impl Secrets {
    pub(super) fn insert(&mut self, name: String, value: Result<String, String>) {
        self.values.insert(name, value);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The value of `name`, or why it is unavailable (never containing the value).
    pub fn get(&self, name: &str) -> Result<&str, String> {
        match self.values.get(name) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(format!("secret `{name}` is unavailable: {e}")),
            None => Err(format!("secret `{name}` is not configured")),
        }
    }

    /// Names and load status, for `doctor`.
    pub fn status(&self) -> impl Iterator<Item = (&str, Result<(), &str>)> {
        self.values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_ref().map(|_| ()).map_err(String::as_str)))
    }

    /// Every loaded value (for the audit log's masking).
    pub fn values(&self) -> Vec<String> {
        self.values.values().flatten().cloned().collect()
    }

    /// Replaces every secret value found in `text` by `****`, in its plain and its
    /// percent-encoded form (the form it takes in a URL).
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in self.values.values().flatten() {
            if v.len() < MIN_MASKED_LEN {
                continue;
            }
            for form in [v.clone(), encode(v)] {
                if out.contains(form.as_str()) {
                    out = out.replace(form.as_str(), "****");
                }
                // A text clipped for the model (`…`) may end inside a secret: its prefix goes.
                if out.contains('…') {
                    for k in (MIN_MASKED_LEN..form.len()).rev() {
                        if !form.is_char_boundary(k) {
                            continue;
                        }
                        let cut = format!("{}…", &form[..k]);
                        if out.contains(&cut) {
                            out = out.replace(&cut, "****…");
                        }
                    }
                }
            }
        }
        out
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters and `:` (a bot token's
/// separator, allowed in a path): a secret in a URL template can never add a path segment, a
/// query or a fragment.
pub fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.values.keys()).finish()
    }
}
