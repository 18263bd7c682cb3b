//! Reading a configuration or handler file without trusting it: never a
//! FIFO, device, socket or directory (opening one could block forever or
//! stream without end), never more than a limit, never a file outside the
//! directories it may come from.

use std::fs::{File, FileType, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::outcome::Cause;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// There is no such file (or a link to nothing).
    #[error("{} does not exist", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The process may not read it.
    #[error("{}: permission denied", path.display())]
    PermissionDenied {
        /// The file.
        path: PathBuf,
    },
    /// A FIFO, a device, a socket or a directory: never opened as a file.
    #[error("{}: is a {kind}, not a regular file; it is not read", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// Larger than the limit; not read past it.
    #[error("{}: larger than the limit of {limit} bytes; it is not read", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A configuration that resolves (through links) outside its own
    /// directory and the roots the manifest allows: not read at all.
    #[error(
        "{}: resolves outside its directory and the allowed roots; it is not read",
        path.display()
    )]
    Outside {
        /// The file.
        path: PathBuf,
    },
    /// Any other I/O error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl ReadError {
    /// The event cause a failed read is reported as.
    pub fn cause(&self) -> Cause {
        match self {
            ReadError::TooLarge { .. } => Cause::Invalid,
            _ => Cause::Unreadable,
        }
    }

    pub(crate) fn io(path: &Path, e: io::Error) -> ReadError {
        let path = path.to_owned();
        match e.kind() {
            io::ErrorKind::NotFound => ReadError::Missing { path },
            io::ErrorKind::PermissionDenied => ReadError::PermissionDenied { path },
            _ => ReadError::Io { path, source: e },
        }
    }
}

/// What a file type is called in messages.
pub(crate) fn kind_of(t: FileType) -> &'static str {
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO (named pipe)"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_symlink() {
        "symbolic link"
    } else {
        "regular file"
    }
}

/// Checks that `path` (followed through links) is a regular file, without
/// opening it.
///
/// # Errors
/// As [`read_regular`], but never `TooLarge`.
pub fn check_regular(path: &Path) -> Result<(), ReadError> {
    let meta = std::fs::metadata(path).map_err(|e| ReadError::io(path, e))?;
    if meta.file_type().is_file() {
        Ok(())
    } else {
        Err(ReadError::NotRegular {
            path: path.to_owned(),
            kind: kind_of(meta.file_type()),
        })
    }
}

/// Reads a regular file of at most `limit` bytes. The file is opened
/// non-blocking (a FIFO swapped in after a check cannot hang the open),
/// its type checked on the open descriptor, and at most `limit + 1` bytes
/// are read, so `/dev/zero` or a growing file cannot exhaust memory.
///
/// # Errors
/// [`ReadError`] naming the file and what is wrong.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| ReadError::io(path, e))?;
    let meta = file.metadata().map_err(|e| ReadError::io(path, e))?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_owned(),
            kind: kind_of(meta.file_type()),
        });
    }
    let too_large = || ReadError::TooLarge {
        path: path.to_owned(),
        limit,
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}
