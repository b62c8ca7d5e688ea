//! The plan as JSON, written one spoke at a time: a fleet's plan need not be held in
//! memory, or as one string, to be printed or saved.

use std::io::{self, Write};

use serde::Serialize;

use super::{Action, HubInfo, SpokePlan, FORMAT_VERSION};

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
///
/// The bytes are serde_json's for [`SpokePlan`]'s derived `Serialize`, but the actions,
/// most of a plan's bytes, are written by hand: through serde, escaping every key and a
/// write per token cost three times as much. A test holds the two to the same bytes.
pub fn spoke_json(spoke: &SpokePlan) -> io::Result<Vec<u8>> {
    let diffs: usize = spoke
        .actions
        .iter()
        .filter_map(|a| a.diff.as_ref())
        .map(String::len)
        .sum();
    // About 600 bytes per action and its diff, escaped: sized up front, so that a large
    // spoke's JSON is not doubled past its size while it waits to be written.
    let mut out = Vec::with_capacity(1024 + 640 * spoke.actions.len() + diffs + diffs / 8);
    // SpokePlan's fields before its actions, in its order and with its attributes.
    #[derive(Serialize)]
    struct Head<'a> {
        name: &'a str,
        location: &'a str,
        project: &'a str,
        wave: u32,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        same_place_as: &'a [String],
        environments: &'a std::collections::BTreeMap<String, String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        fingerprint: &'a Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        unleash_version: &'a Option<String>,
        summary: &'a super::Summary,
    }
    Head {
        name: &spoke.name,
        location: &spoke.location,
        project: &spoke.project,
        wave: spoke.wave,
        same_place_as: &spoke.same_place_as,
        environments: &spoke.environments,
        fingerprint: &spoke.fingerprint,
        unleash_version: &spoke.unleash_version,
        summary: &spoke.summary,
    }
    .serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        Pretty::at_level(2),
    ))?;
    // "{\n      ...\n    }": reopen the object for the actions.
    out.truncate(out.len() - b"\n    }".len());
    out.extend_from_slice(b",\n      \"actions\": ");
    write_actions(&mut out, &spoke.actions)?;
    if let Some(error) = &spoke.error {
        out.extend_from_slice(b",\n      \"error\": ");
        string(&mut out, &error.to_string())?;
    }
    out.extend_from_slice(b"\n    }");
    out.shrink_to_fit();
    Ok(out)
}

/// A spoke's actions as serde_json's pretty printer writes them inside a spoke of
/// [`spoke_json`] (the array opens three levels deep).
fn write_actions(out: &mut Vec<u8>, actions: &[Action]) -> io::Result<()> {
    if actions.is_empty() {
        out.extend_from_slice(b"[]");
        return Ok(());
    }
    out.push(b'[');
    for (i, a) in actions.iter().enumerate() {
        out.extend_from_slice(if i == 0 {
            b"\n        {"
        } else {
            b",\n        {"
        });
        out.extend_from_slice(b"\n          \"kind\": \"");
        out.extend_from_slice(a.kind.as_str().as_bytes());
        out.extend_from_slice(b"\",\n          \"name\": ");
        string(out, &a.name)?;
        out.extend_from_slice(b",\n          \"action\": \"");
        out.extend_from_slice(a.action.as_str().as_bytes());
        out.extend_from_slice(b"\",\n          \"reason\": ");
        string(out, &a.reason.to_string())?;
        out.extend_from_slice(if a.blocked {
            b",\n          \"blocked\": true,\n          \"depends_on\": "
        } else {
            b",\n          \"blocked\": false,\n          \"depends_on\": "
        });
        if a.depends_on.is_empty() {
            out.extend_from_slice(b"[]");
        } else {
            out.push(b'[');
            for (j, (kind, name)) in a.depends_on.iter().enumerate() {
                out.extend_from_slice(if j == 0 { b"\n" } else { b",\n" });
                out.extend_from_slice(b"            [\n              \"");
                out.extend_from_slice(kind.as_str().as_bytes());
                out.extend_from_slice(b"\",\n              ");
                string(out, name)?;
                out.extend_from_slice(b"\n            ]");
            }
            out.extend_from_slice(b"\n          ]");
        }
        if let Some(diff) = &a.diff {
            out.extend_from_slice(b",\n          \"diff\": ");
            string(out, diff)?;
        }
        for (key, list) in [
            (&b",\n          \"environments\": ["[..], &a.environments),
            (&b",\n          \"notes\": ["[..], &a.notes),
            (&b",\n          \"kept\": ["[..], &a.kept),
        ] {
            if list.is_empty() {
                continue;
            }
            out.extend_from_slice(key);
            for (j, item) in list.iter().enumerate() {
                out.extend_from_slice(if j == 0 {
                    b"\n            "
                } else {
                    b",\n            "
                });
                string(out, item)?;
            }
            out.extend_from_slice(b"\n          ]");
        }
        if let Some(drift) = &a.drift {
            out.extend_from_slice(b",\n          \"drift\": ");
            drift.serialize(&mut serde_json::Serializer::with_formatter(
                &mut *out,
                Pretty::at_level(5),
            ))?;
        }
        out.extend_from_slice(b"\n        }");
    }
    out.extend_from_slice(b"\n      ]");
    Ok(())
}

/// A JSON string, escaped as serde_json escapes it.
fn string(out: &mut Vec<u8>, s: &str) -> io::Result<()> {
    serde_json::to_writer(out, s).map_err(io::Error::from)
}

/// Pretty JSON text (serde_json's, two-space indent, with a trailing newline) that knows
/// where its lines start, for line diffs.
pub(crate) struct Text {
    text: String,
    /// Where each line after the first starts.
    starts: Vec<usize>,
}

impl Text {
    /// `value` as pretty JSON.
    pub(crate) fn of<T: Serialize + ?Sized>(value: &T) -> Self {
        let mut out = LineStarts {
            text: Vec::with_capacity(4096),
            starts: Vec::with_capacity(128),
        };
        // Only a map with non-string keys fails, and plans have none.
        let _ = value.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out,
            Pretty::at_level(0),
        ));
        out.text.push(b'\n');
        Self {
            // serde_json writes only valid UTF-8.
            text: String::from_utf8(out.text).unwrap_or_default(),
            starts: out.starts,
        }
    }

    /// The whole text.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The lines, without their newlines.
    pub(crate) fn lines(&self) -> Vec<&str> {
        let ends = self
            .starts
            .iter()
            .map(|s| s - 1)
            .chain([self.text.len() - 1]);
        std::iter::once(0)
            .chain(self.starts.iter().copied())
            .zip(ends)
            .map(|(start, end)| &self.text[start..end])
            .collect()
    }
}

/// A writer that notes where lines start as [`Pretty`] writes them: every newline it
/// writes comes first in a write of its own, and JSON has no other raw newline.
struct LineStarts {
    text: Vec<u8>,
    starts: Vec<usize>,
}

impl Write for LineStarts {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if bytes.first() == Some(&b'\n') {
            self.starts.push(self.text.len() + 1);
        }
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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

    /// A string's characters as serde_json writes them, except those that change what a
    /// terminal shows instead of showing themselves (serde_json escapes only C0 controls:
    /// here also DEL, C1 controls, zero-width and bidirectional marks), written as `\uXXXX`.
    /// The JSON value is the same; a name or description from a hostile spoke cannot make
    /// a reviewed diff read other than it is.
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if fragment.bytes().all(|b| b.is_ascii() && b != 0x7f) {
            return w.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if crate::redact::is_unsafe(c) {
                w.write_all(&fragment.as_bytes()[start..i])?;
                write!(w, "\\u{:04x}", u32::from(c))?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
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
            let text = super::Text::of(&value);
            assert_eq!(text.as_str(), expected);
            assert_eq!(text.lines(), expected.lines().collect::<Vec<_>>());
        }
    }

    #[test]
    fn characters_that_change_what_a_terminal_shows_are_written_escaped() {
        // A right-to-left override, a C1 control (NEL), DEL and a zero-width space, among
        // text serde_json writes as it is.
        let value = json!({"description": "on \u{202e}ffo\u{202c} \u{85}x\u{7f} é\u{200b}"});
        let text = super::Text::of(&value);
        assert!(
            text.as_str()
                .contains(r#""on \u202effo\u202c \u0085x\u007f é\u200b""#),
            "{}",
            text.as_str()
        );
        let unsafe_char = |c: char| c != '\n' && crate::redact::is_unsafe(c);
        assert!(!text.as_str().chars().any(unsafe_char));
        // The same JSON value.
        let back: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
        assert_eq!(back, value);
    }
}
