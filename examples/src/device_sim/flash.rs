//! The simulated board's flash partition for the session journal: a NOR flash image in a
//! file, so that a killed and restarted simulator resumes its MQTT session as the board
//! does after a reset.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use embedded_storage_async::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// Erase page of the ESP32-C3's flash.
pub(crate) const PAGE: usize = 4096;
/// Pages of the image: 16 KiB, the journal partition the firmware would give.
pub(crate) const PAGES: usize = 4;

/// NOR flash semantics over a file: erasing sets a page to `0xFF`, writing clears bits only
/// (writing a word twice ANDs), 4-byte words. Every write and erase goes to the file at
/// once (the operating system keeps it across a killed process).
#[derive(Debug)]
pub(crate) struct FileFlash {
    file: File,
    bytes: Vec<u8>,
}

impl FileFlash {
    /// Opens the image at `path`, creating an erased one of [`PAGES`] pages if there is none.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut bytes = std::fs::read(path)?;
        if bytes.len() != PAGE * PAGES {
            if !bytes.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: {} bytes, not a {} byte flash image",
                        path.display(),
                        bytes.len(),
                        PAGE * PAGES
                    ),
                ));
            }
            bytes = vec![0xFF; PAGE * PAGES];
            file.write_all_at(&bytes, 0)?;
        }
        Ok(Self { file, bytes })
    }

    fn range(&self, offset: u32, len: usize) -> Result<std::ops::Range<usize>, FlashError> {
        let start = offset as usize;
        if !start.is_multiple_of(4) || !len.is_multiple_of(4) {
            return Err(FlashError::NotAligned);
        }
        if start + len > self.bytes.len() {
            return Err(FlashError::OutOfBounds);
        }
        Ok(start..start + len)
    }

    fn store(&self, range: std::ops::Range<usize>) -> Result<(), FlashError> {
        self.file
            .write_all_at(&self.bytes[range.clone()], range.start as u64)
            .map_err(|_| FlashError::Io)
    }
}

/// Why a flash operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlashError {
    NotAligned,
    OutOfBounds,
    /// The image file could not be written.
    Io,
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::NotAligned => NorFlashErrorKind::NotAligned,
            Self::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            Self::Io => NorFlashErrorKind::Other,
        }
    }
}

impl ErrorType for FileFlash {
    type Error = FlashError;
}

impl ReadNorFlash for FileFlash {
    const READ_SIZE: usize = 4;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let range = self.range(offset, bytes.len())?;
        bytes.copy_from_slice(&self.bytes[range]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

impl NorFlash for FileFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let range = self.range(from, to.saturating_sub(from) as usize)?;
        if !range.start.is_multiple_of(PAGE) || !range.end.is_multiple_of(PAGE) {
            return Err(FlashError::NotAligned);
        }
        self.bytes[range.clone()].fill(0xFF);
        self.store(range)
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let range = self.range(offset, bytes.len())?;
        for (dst, src) in self.bytes[range.clone()].iter_mut().zip(bytes) {
            *dst &= *src;
        }
        self.store(range)
    }
}

impl MultiwriteNorFlash for FileFlash {}
