//! One apply per spoke at a time: an exclusive lock file per spoke, held for the whole
//! apply. A file spoke's lock sits next to it (`eu.json.lock`); a live spoke's lives in the
//! lock folder (`.flagfleet/locks/`), named from the spoke's URL and project, so that every
//! topology naming that server and project meets the same lock.
//!
//! The file is created with `create_new` (0600, its folder 0700) and holds who took it:
//! pid, host, user, start time. A lock whose holder is a dead process on this host is
//! stale and taken over with a warning; a lock held from another host is never taken
//! over (its pid means nothing here). Two pipelines on runners that do not share a disk
//! do not see each other's locks: the fingerprint re-check before a spoke's first write
//! covers them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::topology::{Location, Spoke};

/// Why a spoke could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another apply holds the lock.
    #[error("spoke {spoke} is locked by another apply ({holder}; lock file {}){waited}", path.display())]
    Held {
        /// The spoke.
        spoke: String,
        /// The lock file.
        path: PathBuf,
        /// Who holds it.
        holder: Box<Holder>,
        /// `", waited N s"` when it waited.
        waited: String,
    },
    /// The lock file could not be created or read.
    #[error("cannot lock spoke {spoke} with {}: {source}", path.display())]
    Io {
        /// The spoke.
        spoke: String,
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Who holds a lock: what the lock file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// User name.
    pub user: String,
    /// When the apply took the lock (UTC, RFC 3339).
    pub started: String,
}

impl Holder {
    /// This process.
    fn me() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".into());
        let user = ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "unknown".into());
        let started = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        Holder {
            pid: std::process::id(),
            host,
            user,
            started,
        }
    }

    /// Whether the holder is a process of this host that no longer runs.
    fn is_stale(&self, me: &Holder) -> bool {
        let proc = Path::new("/proc");
        self.host == me.host && proc.is_dir() && !proc.join(self.pid.to_string()).exists()
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on host {}, user {}, started {}",
            self.pid, self.host, self.user, self.started
        )
    }
}

/// The locks of one apply, released when dropped (or by [`Locks::release`], e.g. from a
/// signal handler that exits at once).
#[derive(Debug, Clone, Default)]
pub struct Locks {
    held: Arc<Mutex<Vec<PathBuf>>>,
}

impl Locks {
    /// Locks `spokes`, waiting up to `timeout` for each lock another apply holds. Live
    /// spokes' locks go in `dir`. Locks are taken in the order of their paths, so two
    /// applies waiting for overlapping spokes cannot wait for each other forever.
    pub async fn acquire(
        spokes: &[&Spoke],
        dir: &Path,
        timeout: Duration,
    ) -> Result<Locks, LockError> {
        let mut wanted: Vec<(PathBuf, &str)> = spokes
            .iter()
            .map(|s| (lock_path(s, dir), s.instance.name.as_str()))
            .collect();
        wanted.sort();
        wanted.dedup_by(|a, b| a.0 == b.0);
        let locks = Locks::default();
        let deadline = Instant::now() + timeout;
        let me = Holder::me();
        for (path, spoke) in wanted {
            take(&path, spoke, &me, deadline, timeout).await?;
            locks.lock().push(path);
        }
        Ok(locks)
    }

    /// Removes the lock files (once).
    pub fn release(&self) {
        for path in self.lock().drain(..) {
            let _ = std::fs::remove_file(path);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PathBuf>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Locks {
    fn drop(&mut self) {
        // Clones share the list; the last one releases.
        if Arc::strong_count(&self.held) == 1 {
            self.release();
        }
    }
}

/// The default folder of live spokes' locks, `.flagfleet/locks`.
pub fn default_lock_dir() -> PathBuf {
    Path::new(".flagfleet").join("locks")
}

/// Where a spoke's lock lives.
pub fn lock_path(spoke: &Spoke, dir: &Path) -> PathBuf {
    match &spoke.instance.location {
        Location::File(path) => {
            // One lock however the file is named (`eu.json`, `./eu.json`).
            let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push(".lock");
            path.with_file_name(name)
        }
        Location::Live { url, .. } => {
            // One lock however the URL is spelled (`https://H:443/`, `https://h`).
            let url = crate::topology::normalize_url(url);
            let project = &spoke.instance.project;
            let readable: String = format!("{url}-{project}")
                .split("://")
                .last()
                .unwrap_or_default()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect::<String>()
                .split('-')
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join("-");
            let readable: String = readable.chars().take(80).collect();
            // URLs that differ only in punctuation must not share a lock file name.
            let hash = xxhash_rust::xxh3::xxh3_64(format!("{url}\n{project}").as_bytes());
            dir.join(format!("{readable}-{:08x}.lock", hash as u32))
        }
    }
}

/// Takes one lock file, waiting until `deadline` while another live apply holds it.
async fn take(
    path: &Path,
    spoke: &str,
    me: &Holder,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), LockError> {
    let io = |source| LockError::Io {
        spoke: spoke.to_string(),
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            crate::files::create_private_dir_all(parent).map_err(io)?;
        }
    }
    let body = serde_json::to_string_pretty(me).unwrap_or_default() + "\n";
    loop {
        match crate::files::create_new_private(path) {
            Ok(mut file) => {
                return file
                    .write_all(body.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            // Released meanwhile: try again at once.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(e)),
        };
        // A lock file being written this instant reads empty: wait a moment.
        let holder: Option<Holder> = serde_json::from_str(&text).ok();
        if let Some(h) = holder.as_ref().filter(|h| h.is_stale(me)) {
            tracing::warn!(
                "taking over the stale lock {} of spoke {spoke}: its holder ({h}) no longer runs",
                path.display()
            );
            // Removed only if it is still that stale lock, not one taken meanwhile.
            if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
                let _ = std::fs::remove_file(path);
            }
            continue;
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(LockError::Held {
                spoke: spoke.to_string(),
                path: path.to_path_buf(),
                holder: Box::new(holder.unwrap_or_else(|| Holder {
                    pid: 0,
                    host: "?".into(),
                    user: "?".into(),
                    started: "? (the lock file is unreadable)".into(),
                })),
                waited: if timeout.is_zero() {
                    String::new()
                } else {
                    format!(", waited {} s", timeout.as_secs())
                },
            });
        }
        tokio::time::sleep((deadline - now).min(Duration::from_millis(200))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Instance;

    fn spoke(location: Location) -> Spoke {
        Spoke {
            instance: Instance {
                name: "eu-west".into(),
                location,
                project: "default".into(),
                line: 1,
            },
            environments: Default::default(),
            select: None,
            scaffolding: Default::default(),
            prune: false,
            max_archive: None,
            overrides: Vec::new(),
            keep: Vec::new(),
            wave: 1,
            on_drift: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_second_apply_is_refused_with_the_holder_and_can_go_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let file = spoke(Location::File(dir.path().join("eu.json")));
        let first = Locks::acquire(&[&file], dir.path(), Duration::ZERO)
            .await
            .unwrap();
        let path = dir.path().join("eu.json.lock");
        let holder: Holder =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(holder.pid, std::process::id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = Locks::acquire(&[&file], dir.path(), Duration::from_millis(300))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "spoke eu-west is locked by another apply (pid {} on host {}, user {}, started {}",
                holder.pid, holder.host, holder.user, holder.started
            )),
            "{text}"
        );
        drop(first);
        assert!(!path.exists());
        Locks::acquire(&[&file], dir.path(), Duration::ZERO)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_waiting_apply_gets_the_lock_when_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let file = spoke(Location::File(dir.path().join("eu.json")));
        let first = Locks::acquire(&[&file], dir.path(), Duration::ZERO)
            .await
            .unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(first);
        });
        Locks::acquire(&[&file], dir.path(), Duration::from_secs(10))
            .await
            .unwrap();
        release.await.unwrap();
    }

    #[tokio::test]
    async fn a_lock_of_a_dead_process_on_this_host_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let file = spoke(Location::File(dir.path().join("eu.json")));
        let me = Holder::me();
        // A process that ran and is gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = Holder {
            pid: dead,
            ..me.clone()
        };
        let path = dir.path().join("eu.json.lock");
        std::fs::write(&path, serde_json::to_string(&stale).unwrap()).unwrap();
        Locks::acquire(&[&file], dir.path(), Duration::ZERO)
            .await
            .unwrap();
        // Held from another host: never taken over.
        let elsewhere = Holder {
            pid: dead,
            host: format!("{}-other", me.host),
            ..me
        };
        let other = spoke(Location::File(dir.path().join("us.json")));
        std::fs::write(
            dir.path().join("us.json.lock"),
            serde_json::to_string(&elsewhere).unwrap(),
        )
        .unwrap();
        assert!(matches!(
            Locks::acquire(&[&other], dir.path(), Duration::ZERO).await,
            Err(LockError::Held { .. })
        ));
    }

    #[tokio::test]
    async fn two_spokes_naming_one_file_two_ways_take_one_lock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("eu.json"), "{}").unwrap();
        let plain = spoke(Location::File(dir.path().join("eu.json")));
        let dotted = spoke(Location::File(dir.path().join(".").join("eu.json")));
        let locks = Locks::acquire(&[&plain, &dotted], dir.path(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(locks.lock().len(), 1);
        assert_eq!(
            lock_path(&plain, dir.path()),
            lock_path(&dotted, dir.path())
        );
    }

    #[test]
    fn a_live_spokes_lock_is_named_from_its_url_and_project() {
        let dir = Path::new(".flagfleet/locks");
        let live = |url: &str, project: &str| {
            let mut s = spoke(Location::Live {
                url: url.into(),
                token: crate::topology::TokenSource::Env {
                    var: "T".into(),
                    at: String::new(),
                },
                transport: Default::default(),
            });
            s.instance.project = project.into();
            lock_path(&s, dir)
        };
        let a = live("https://eu.unleash.example.com/", "default");
        let name = a.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.starts_with("eu-unleash-example-com-default-") && name.ends_with(".lock"),
            "{name}"
        );
        assert_eq!(a.parent(), Some(dir));
        assert_ne!(a, live("https://eu.unleash.example.com/", "payments"));
        assert_ne!(a, live("https://eu-unleash.example.com/", "default"));
        assert_eq!(a, live("https://eu.unleash.example.com/", "default"));
        // One server, spelled two ways.
        assert_eq!(a, live("HTTPS://EU.unleash.example.com:443", "default"));
    }
}
