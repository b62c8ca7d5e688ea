//! The one writer layer: stdout vs stderr, colour decisions, and a closed pipe treated as a
//! normal end of output.

use std::io::{self, Write};

/// Where and how output is written.
pub(crate) struct Ui {
    out: Box<dyn Write>,
    err: Box<dyn Write>,
}

impl Ui {
    /// The process's real stdout/stderr.
    pub fn stdio() -> Self {
        Self {
            out: Box::new(io::stdout()),
            err: Box::new(io::stderr()),
        }
    }

    /// Writes to stdout.
    pub fn out(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    /// Stdout as a writer, for output written in pieces (flush when done).
    pub fn out_writer(&mut self) -> &mut dyn Write {
        &mut *self.out
    }

    /// Writes to stderr.
    pub fn err(&mut self, text: &str) -> io::Result<()> {
        self.err.write_all(text.as_bytes())?;
        self.err.flush()
    }
}
