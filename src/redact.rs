//! Server and proxy text made safe to print: every token value of the run replaced by
//! `[redacted]`, control characters escaped, and long text cut.
//!
//! A proxy may echo request headers into an error page, and a server may put anything in
//! an error message; flagfleet prints such text in errors and logs. Every token read from
//! the topology is registered here (all instances', since one instance's proxy may be
//! shared), and [`clean`] is applied wherever foreign text enters a message.

use std::sync::{PoisonError, RwLock};

/// What a token value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// The shortest text treated as a secret: shorter pieces would redact ordinary words.
const MIN_SECRET: usize = 6;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a token value (and its secret part, after `project:environment.`) so that
/// [`clean`] removes it from any text.
pub fn register(token: &str) {
    let mut pieces = vec![token.to_string()];
    // An Unleash token is `project:environment.secret`; a server may echo the secret alone.
    if let Some((_, secret)) = token.split_once('.') {
        pieces.push(secret.to_string());
    }
    let mut secrets = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    for piece in pieces {
        if piece.len() >= MIN_SECRET && !secrets.contains(&piece) {
            secrets.push(piece);
        }
    }
    // Longest first, so a token is replaced whole before its secret part is looked for.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered token replaced by `[redacted]` and control characters
/// escaped (`\u{1b}`, `\n`), cut after `max_chars` characters (an ellipsis says so).
pub fn clean(text: &str, max_chars: usize) -> String {
    let mut text = text.to_string();
    {
        let secrets = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
        for secret in secrets.iter() {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
    }
    let mut out = String::with_capacity(text.len().min(max_chars + 16));
    for (n, c) in text.chars().enumerate() {
        if n == max_chars {
            out.push_str("… (cut)");
            break;
        }
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` with control characters escaped, uncut (names and values from files, which hold
/// no token but may hold escape sequences).
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that change what a terminal shows rather than showing themselves: C0/C1
/// controls (escape sequences, carriage returns) and the bidirectional overrides that can
/// make text read differently from what it is.
pub(crate) fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_their_secret_parts_are_redacted_and_escapes_shown() {
        register("*:*.canary-secret-0001");
        let echoed = "Authorization: *:*.canary-secret-0001\x1b[2J all spokes applied OK";
        assert_eq!(
            clean(echoed, 300),
            "Authorization: [redacted]\\u{1b}[2J all spokes applied OK"
        );
        assert_eq!(
            clean("secret canary-secret-0001 alone", 300),
            "secret [redacted] alone"
        );
        assert_eq!(clean("line\nbreak", 300), "line\\nbreak");
        assert_eq!(clean("abcdef", 3), "abc… (cut)");
    }
}
