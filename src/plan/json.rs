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
        self.spoke_json(&spoke_json(spoke)?)
    }

    /// Writes one spoke's plan already serialized by [`spoke_json`] (on another thread,
    /// say).
    pub fn spoke_json(&mut self, json: &[u8]) -> io::Result<()> {
        self.out.write_all(if self.spokes == 0 {
            b"\n    "
        } else {
            b",\n    "
        })?;
        self.spokes += 1;
        self.out.write_all(json)
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

/// One spoke's plan as [`JsonWriter`] writes it: pretty JSON with every line after the
/// first indented by two levels (a spoke inside `"spokes": [...]`).
pub fn spoke_json(spoke: &SpokePlan) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64 * 1024);
    spoke.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        Pretty::at_level(2),
    ))?;
    Ok(out)
}

/// `value` as serde_json's pretty JSON (two-space indent) with a trailing newline.
pub(crate) fn pretty<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    // Only a map with non-string keys fails, and plans have none.
    let _ = value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        Pretty::at_level(0),
    ));
    out.push(b'\n');
    out
}

/// A newline and the deepest indentation a plan reaches, and more.
const NEWLINE_AND_INDENT: &[u8; 129] = b"\n                                                                                                                                ";

/// serde_json's `PrettyFormatter` (two-space indent), byte for byte, but starting at a
/// given depth, and writing a newline and its indentation at once instead of one write
/// per level: a plan's actions nest deep, and per-level writes were half the cost of
/// serializing them.
struct Pretty {
    level: usize,
    has_value: bool,
}

impl Pretty {
    fn at_level(level: usize) -> Self {
        Self {
            level,
            has_value: false,
        }
    }

    fn newline<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        let width = 1 + 2 * self.level;
        match NEWLINE_AND_INDENT.get(..width) {
            Some(bytes) => w.write_all(bytes),
            None => {
                w.write_all(b"\n")?;
                (0..self.level).try_for_each(|_| w.write_all(b"  "))
            }
        }
    }

    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        w.write_all(bracket)
    }

    fn item<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.newline(w)
    }
}

impl serde_json::ser::Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn pretty_is_serde_jsons_pretty_at_any_depth() {
        // Empty containers, scalars, and nesting deeper than the prepared indentation.
        let mut deep = json!({"leaf": [], "empty": {}, "n": 1.5, "s": "a\nb"});
        for i in 0..80 {
            deep = json!({ format!("level{i}"): [deep, null, true] });
        }
        for value in [
            json!([]),
            json!({}),
            json!("x"),
            json!([1, [2, {}], {"a": []}]),
            deep,
        ] {
            let expected = format!("{}\n", serde_json::to_string_pretty(&value).unwrap());
            assert_eq!(String::from_utf8(super::pretty(&value)).unwrap(), expected);
        }
    }
}
