//! The plan as JSON, written one spoke at a time: a fleet's plan need not be held in
//! memory, or as one string, to be printed or saved.

use std::io::{self, Write};

use serde::Serialize;

use super::{HubInfo, SpokePlan, FORMAT_VERSION};

/// Writes a plan as pretty JSON, spoke by spoke; the bytes are exactly those of
/// [`super::Plan::to_json`] for the same plan.
pub struct JsonWriter<W: Write> {
    out: W,
    spokes: usize,
}

/// The fields of a plan before its spokes, in the order [`super::Plan`] declares them.
#[derive(Serialize)]
struct Head<'a> {
    format_version: u32,
    topology_fingerprint: &'a str,
    hub: &'a HubInfo,
}

impl<W: Write> JsonWriter<W> {
    /// Writes everything before the first spoke.
    pub fn begin(mut out: W, topology_fingerprint: &str, hub: &HubInfo) -> io::Result<Self> {
        let head = serde_json::to_string_pretty(&Head {
            format_version: FORMAT_VERSION,
            topology_fingerprint,
            hub,
        })?;
        // "{\n  ...\n}": leave the object open for the spokes.
        let open = head.strip_suffix("\n}").unwrap_or(&head);
        out.write_all(open.as_bytes())?;
        out.write_all(b",\n  \"spokes\": [")?;
        Ok(Self { out, spokes: 0 })
    }

    /// Writes one spoke's plan.
    pub fn spoke(&mut self, spoke: &SpokePlan) -> io::Result<()> {
        self.out.write_all(if self.spokes == 0 {
            b"\n    "
        } else {
            b",\n    "
        })?;
        self.spokes += 1;
        let mut indented = Indent(&mut self.out);
        spoke.serialize(&mut serde_json::Serializer::pretty(&mut indented))?;
        Ok(())
    }

    /// Closes the plan and returns the writer (flushed).
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(if self.spokes == 0 {
            b"]\n}\n"
        } else {
            b"\n  ]\n}\n"
        })?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Indents every line after the first by two levels (a spoke inside `"spokes": [...]`).
/// Pretty JSON has no raw newline inside a string, so every newline is structural.
struct Indent<W>(W);

impl<W: Write> Write for Indent<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.0.write_all(&rest[..=i])?;
            self.0.write_all(b"    ")?;
            rest = &rest[i + 1..];
        }
        self.0.write_all(rest)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
