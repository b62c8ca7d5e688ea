//! Files flagfleet writes: private (0600, folders 0700, whatever the umask), whole or not
//! at all (a temporary file, then a rename, then the folder synced), and never over another
//! file where that file may be the only copy (backups, lock files: [`create_new_private`],
//! [`write_unique`]).
//!
//! Backups, saved plans and exports hold full flag configurations; lock files name users
//! and hosts. None of them is anyone else's business on a shared machine.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The mode of every file flagfleet creates.
pub const FILE_MODE: u32 = 0o600;
/// The mode of every folder flagfleet creates.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and any missing parents, each new folder 0700 (the umask cannot widen
/// that). Folders that already exist keep their mode: they are the user's.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_private_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    match builder.create(dir) {
        Ok(()) => set_mode(dir, DIR_MODE),
        // Made meanwhile by someone else (another apply): theirs to keep.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `path`, 0600, failing with `AlreadyExists` if anything is there (lock files).
pub fn create_new_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    let file = options.open(path)?;
    // The umask may have narrowed the mode further, never widened it; say it exactly.
    set_mode(path, FILE_MODE)?;
    Ok(file)
}

/// Writes `text` to `path` atomically and privately (see [`AtomicFile`]).
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(text.as_bytes())?;
    file.commit()
}

/// Writes `text` to a new file `{stem}-{n}.{ext}` in `dir`, the first `n` (from 1) whose
/// name is free, and returns its path. Never replaces a file, even one made at the same
/// moment by another process: the name is taken by a hard link that fails if it exists.
pub fn write_unique(dir: &Path, stem: &str, ext: &str, text: &str) -> io::Result<PathBuf> {
    write_unique_with(dir, stem, ext, |out| out.write_all(text.as_bytes()))
}

/// [`write_unique`] with the contents written by `write` (buffered), so that a large file
/// need not be built in memory first.
pub fn write_unique_with(
    dir: &Path,
    stem: &str,
    ext: &str,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<PathBuf> {
    create_private_dir_all(dir)?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    set_mode(tmp.path(), FILE_MODE)?;
    let mut out = io::BufWriter::new(tmp);
    write(&mut out)?;
    let mut tmp = out.into_inner().map_err(|e| e.into_error())?;
    tmp.as_file().sync_all()?;
    for n in 1..=10_000u32 {
        let path = dir.join(format!("{stem}-{n}.{ext}"));
        match tmp.persist_noclobber(&path) {
            Ok(_) => {
                sync_dir(dir)?;
                return Ok(path);
            }
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => tmp = e.file,
            Err(e) => return Err(e.error),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{}: no free name for {stem}", dir.display()),
    ))
}

/// A file written in pieces that appears at its path, whole, only on [`AtomicFile::commit`]
/// (a temporary file in the same folder, then a rename, then the folder synced); dropped
/// uncommitted, it leaves the path as it was.
///
/// A new file is 0600; a file that exists keeps its mode (a snapshot the user made
/// readable for git stays so).
pub struct AtomicFile {
    path: PathBuf,
    dir: PathBuf,
    out: io::BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    /// Starts writing `path` (missing folders are created 0700).
    pub fn create(path: &Path) -> io::Result<Self> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        create_private_dir_all(&dir)?;
        let tmp = tempfile::NamedTempFile::new_in(&dir)?;
        let mode = existing_mode(path).unwrap_or(FILE_MODE);
        set_mode(tmp.path(), mode)?;
        Ok(Self {
            path: path.to_path_buf(),
            dir,
            out: io::BufWriter::new(tmp),
        })
    }

    /// Flushes, syncs and moves the file into place, then syncs the folder so the rename
    /// survives a crash.
    pub fn commit(self) -> io::Result<()> {
        let tmp = self.out.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        sync_dir(&self.dir)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Syncs a folder, so that a rename or a new name in it is on disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(unix)]
fn existing_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn existing_mode(_path: &Path) -> Option<u32> {
    None
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_and_folders_are_private_and_existing_files_keep_their_mode() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/b/plan.json");
        write_atomic(&path, "{}").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&root.path().join("a/b")), 0o700);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, "{\"x\": 1}").unwrap();
        assert_eq!(mode(&path), 0o644, "a file the user made readable stays so");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"x\": 1}");
    }

    #[test]
    fn unique_files_never_replace_one_another() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("backups");
        let first = write_unique(&dir, "eu-20260101T000000.000Z", "json", "one").unwrap();
        let second = write_unique(&dir, "eu-20260101T000000.000Z", "json", "two").unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(&second).unwrap(), "two");
        assert_eq!(mode(&first), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            2,
            "no temporary file left"
        );
    }

    #[test]
    fn a_new_private_file_is_never_made_over_an_existing_one() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("spoke.lock");
        create_new_private(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        let again = create_new_private(&path).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
    }
}
