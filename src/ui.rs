//! The one writer layer: stdout vs stderr, colour decisions, and a closed pipe treated as a
//! normal end of output.

use std::io::{self, IsTerminal, Write};

/// Where and how output is written.
pub(crate) struct Ui {
    out: Box<dyn Write>,
    err: Box<dyn Write>,
    /// Whether stdout gets ANSI colours.
    pub color: bool,
    /// Whether stderr is a terminal (progress bars go there only then).
    pub stderr_is_terminal: bool,
}

impl Ui {
    /// The process's real stdout/stderr. Colour only on a terminal, never with `NO_COLOR`
    /// set (to anything non-empty) or `--no-color`.
    pub fn stdio(no_color: bool) -> Self {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let stdout_tty = io::stdout().is_terminal();
        Self {
            out: Box::new(io::stdout()),
            err: Box::new(io::stderr()),
            color: stdout_tty && !no_color && !no_color_env,
            stderr_is_terminal: io::stderr().is_terminal(),
        }
    }

    /// Writes to stdout.
    pub fn out(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    /// Writes to stderr.
    pub fn err(&mut self, text: &str) -> io::Result<()> {
        self.err.write_all(text.as_bytes())?;
        self.err.flush()
    }
}
