//! Request paths: segments escaped when the URL is built, and query pairs.

use std::fmt;

/// A request path: segments (escaped when the URL is built) and query pairs.
#[derive(Debug, Clone, Default)]
pub struct Path<'a> {
    pub(super) segments: Vec<&'a str>,
    pub(super) query: Vec<(&'a str, &'a str)>,
}

impl<'a> Path<'a> {
    /// A path from its segments, e.g. `["api", "admin", "segments"]`.
    pub fn new(segments: &[&'a str]) -> Self {
        Self {
            segments: segments.to_vec(),
            query: Vec::new(),
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: &'a str, value: &'a str) -> Self {
        self.query.push((key, value));
        self
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.segments {
            write!(f, "/{s}")?;
        }
        for (i, (k, v)) in self.query.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}
