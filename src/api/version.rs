//! Unleash server versions, and what the reader must know of them to read an instance
//! right. What each version can hold is [`crate::capability`]'s.

use std::fmt;

/// An Unleash server version (`major.minor.patch`; anything after is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl Version {
    /// `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Reads the version Unleash reports (`8.2.0`, `v7.6.5`, `6.10.1+build`, `5.12`);
    /// `None` when it is no version at all.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().trim_start_matches('v');
        let core = text.split(['+', '-', ' ']).next()?;
        let mut parts = core.split('.');
        let mut number = |required: bool| match parts.next() {
            Some(p) => p.parse::<u32>().ok(),
            None if required => None,
            None => Some(0),
        };
        let major = number(true)?;
        let minor = number(false)?;
        let patch = number(false)?;
        Some(Self::new(major, minor, patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Whether a batch export of `version` reports each flag's enabled state truly. Unleash
/// 6.10.1 (on the lab) reports every flag enabled in every environment, whatever its real
/// state; 7.6.5 and 8.2.0 report it right. For 6.x the reader takes the enabled states
/// from the project's flag list instead (one more request).
pub fn export_reports_enabled(version: Version) -> bool {
    version.major >= 7
}
