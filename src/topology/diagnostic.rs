//! Located, human-readable problems found in a topology file.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a topology file, with where it is and, when we know it, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The topology file.
    pub path: PathBuf,
    /// 1-based line, or 0 when the problem has no single place (e.g. a missing section).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.column,
                self.message
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Turns byte spans of one source text into diagnostics.
pub(crate) struct Locator<'a> {
    path: &'a Path,
    source: &'a str,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(path: &'a Path, source: &'a str) -> Self {
        Self { path, source }
    }

    /// A diagnostic at the start of `span` (or without a place when `span` is `None`).
    pub(crate) fn at(
        &self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        let (line, column) = match span {
            Some(span) => self.line_column(span.start),
            None => (0, 0),
        };
        Diagnostic {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
            hint,
        }
    }

    /// The 1-based line of a byte offset.
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.line_column(offset).0
    }

    fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub(crate) fn suggest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let path = Path::new("t.toml");
        let loc = Locator::new(path, "a = 1\nbé = 2\n");
        let d = loc.at(Some(9..10), "x", None);
        assert_eq!((d.line, d.column), (2, 3));
    }

    #[test]
    fn suggests_close_words_only() {
        let keys = ["environments", "project", "url"];
        assert_eq!(suggest("enviroments", keys), Some("environments"));
        assert_eq!(suggest("colour", keys), None);
    }
}
