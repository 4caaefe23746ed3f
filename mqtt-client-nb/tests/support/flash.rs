//! A NOR flash in RAM that can lose power in the middle of any write or erase.
//!
//! It behaves as NOR flash does: erasing sets a page to `0xFF`, writing only clears bits
//! (so writing a word twice ANDs, which is what `MultiwriteNorFlash` promises), and every
//! access must be aligned. [`MockFlash::cut_at`] arms a power cut at the n-th write or erase
//! (counted from 0 since the last reboot): that operation lands partly, as [`Keep`] says,
//! and it and every later operation fail until [`MockFlash::reboot`], which keeps the bytes.
#![allow(dead_code)]

use embedded_storage_async::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// How much of the operation the power cut interrupts lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Nothing of it.
    Nothing,
    /// A write: its first half (whole words) and a torn word after it, some of whose bits
    /// were cleared. An erase: the first half of the range is erased.
    Part,
    /// All of it, but the power went before the operation could report success.
    All,
}

/// Counts of what reached the flash, for wear figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub writes: u64,
    pub bytes_written: u64,
    pub erases: u64,
    pub reads: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MockError {
    PowerCut,
    NotAligned,
    OutOfBounds,
}

impl NorFlashError for MockError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::PowerCut => NorFlashErrorKind::Other,
            Self::NotAligned => NorFlashErrorKind::NotAligned,
            Self::OutOfBounds => NorFlashErrorKind::OutOfBounds,
        }
    }
}

/// `PAGE`-byte erase pages, 4-byte words (as the ESP32-C3's internal flash through
/// `esp-storage`).
#[derive(Debug, Clone)]
pub struct MockFlash<const PAGE: usize = 4096> {
    pub bytes: Vec<u8>,
    /// Operations since the last reboot.
    ops: usize,
    cut: Option<(usize, Keep)>,
    dead: bool,
    pub stats: Stats,
    /// Erases of each page, to see the wear spread.
    pub page_erases: Vec<u64>,
}

impl<const PAGE: usize> MockFlash<PAGE> {
    /// `pages` erased pages.
    pub fn new(pages: usize) -> Self {
        Self {
            bytes: vec![0xFF; pages * PAGE],
            ops: 0,
            cut: None,
            dead: false,
            stats: Stats::default(),
            page_erases: vec![0; pages],
        }
    }

    /// The whole flash as bytes (e.g. from a file).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        assert_eq!(bytes.len() % PAGE, 0, "whole pages");
        let pages = bytes.len() / PAGE;
        Self {
            bytes,
            ..Self::new(pages)
        }
    }

    /// The power goes during the `op`-th write or erase from now (0: the next one).
    pub fn cut_at(&mut self, op: usize, keep: Keep) {
        self.cut = Some((self.ops + op, keep));
    }

    /// Writes and erases since the last reboot.
    pub fn ops(&self) -> usize {
        self.ops
    }

    /// Whether the power is off.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Power comes back: the same bytes, operations work again, no cut armed.
    pub fn reboot(&mut self) {
        self.dead = false;
        self.cut = None;
        self.ops = 0;
    }

    /// Counts an operation; `Some(keep)` when the power goes during it.
    fn begin(&mut self) -> Result<Option<Keep>, MockError> {
        if self.dead {
            return Err(MockError::PowerCut);
        }
        let op = self.ops;
        self.ops += 1;
        match self.cut {
            Some((at, keep)) if at == op => {
                self.dead = true;
                Ok(Some(keep))
            }
            _ => Ok(None),
        }
    }

    fn range(
        &self,
        offset: u32,
        len: usize,
        align: usize,
    ) -> Result<std::ops::Range<usize>, MockError> {
        let start = offset as usize;
        if !start.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(MockError::NotAligned);
        }
        if start + len > self.bytes.len() {
            return Err(MockError::OutOfBounds);
        }
        Ok(start..start + len)
    }
}

impl<const PAGE: usize> ErrorType for MockFlash<PAGE> {
    type Error = MockError;
}

impl<const PAGE: usize> ReadNorFlash for MockFlash<PAGE> {
    const READ_SIZE: usize = 4;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MockError> {
        if self.dead {
            return Err(MockError::PowerCut);
        }
        let range = self.range(offset, bytes.len(), Self::READ_SIZE)?;
        bytes.copy_from_slice(&self.bytes[range]);
        self.stats.reads += 1;
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

impl<const PAGE: usize> NorFlash for MockFlash<PAGE> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), MockError> {
        if to < from {
            return Err(MockError::OutOfBounds);
        }
        let range = self.range(from, (to - from) as usize, PAGE)?;
        let keep = self.begin()?;
        let end = match keep {
            None | Some(Keep::All) => range.end,
            Some(Keep::Part) => range.start + range.len() / 2,
            Some(Keep::Nothing) => range.start,
        };
        self.bytes[range.start..end].fill(0xFF);
        self.stats.erases += (end - range.start).div_ceil(PAGE) as u64;
        for page in range.start / PAGE..end.div_ceil(PAGE) {
            self.page_erases[page] += 1;
        }
        match keep {
            None => Ok(()),
            Some(_) => Err(MockError::PowerCut),
        }
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MockError> {
        let range = self.range(offset, bytes.len(), Self::WRITE_SIZE)?;
        let keep = self.begin()?;
        let landed = match keep {
            None | Some(Keep::All) => bytes.len(),
            Some(Keep::Part) => bytes.len() / 8 * 4,
            Some(Keep::Nothing) => 0,
        };
        for (dst, src) in self.bytes[range.clone()].iter_mut().zip(&bytes[..landed]) {
            *dst &= *src;
        }
        if keep == Some(Keep::Part) && landed < bytes.len() {
            // The torn word: its first two bytes got their cleared bits, the rest none.
            let at = range.start + landed;
            for i in 0..2 {
                self.bytes[at + i] &= bytes[landed + i];
            }
        }
        self.stats.writes += 1;
        self.stats.bytes_written += landed as u64;
        match keep {
            None => Ok(()),
            Some(_) => Err(MockError::PowerCut),
        }
    }
}

impl<const PAGE: usize> MultiwriteNorFlash for MockFlash<PAGE> {}
