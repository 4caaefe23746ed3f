//! A sequence that is either read in place from received bytes or lent by the caller.
//!
//! Decoding never allocates, so a list in a packet (user properties, subscription identifiers,
//! SUBSCRIBE's filters, SUBACK's reason codes) is kept as the validated bytes it came in and
//! parsed again on iteration. A packet built for sending lends a slice instead. Both compare
//! equal when they hold the same elements.

use core::fmt;

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// An element of a [`Seq`]: knows how to read itself from the validated bytes it was decoded
/// from. Sealed: implemented by this crate's list element types only.
pub trait Element<'a>: Copy + sealed::Sealed {
    /// Reads the next element from `raw`, advancing it; `None` at the end.
    #[doc(hidden)]
    fn next_raw(raw: &mut &'a [u8]) -> Option<Self>;
}

/// A sequence of `T`, borrowed from received bytes or from a caller slice.
pub struct Seq<'a, T> {
    repr: Repr<'a, T>,
}

enum Repr<'a, T> {
    /// Validated wire bytes, parsed again by [`Element::next_raw`] on each iteration.
    Raw(&'a [u8]),
    Slice(&'a [T]),
}

impl<'a, T> Seq<'a, T> {
    /// A sequence over a caller slice, for packets being built.
    pub const fn from_slice(items: &'a [T]) -> Self {
        Self {
            repr: Repr::Slice(items),
        }
    }

    /// A sequence over validated wire bytes, which hold at least one element unless empty
    /// ([`Seq::is_empty`] relies on it).
    pub(crate) const fn from_raw(raw: &'a [u8]) -> Self {
        Self {
            repr: Repr::Raw(raw),
        }
    }

    /// An empty sequence.
    pub const fn empty() -> Self {
        Self::from_slice(&[])
    }
}

impl<'a, T: Element<'a>> Seq<'a, T> {
    /// Iterates over the elements in order.
    #[inline]
    pub fn iter(&self) -> SeqIter<'a, T> {
        SeqIter { repr: self.repr }
    }

    /// Whether there is no element.
    #[inline]
    pub fn is_empty(&self) -> bool {
        // Decoded bytes were validated as whole elements, so a non-empty run holds at least
        // one: no element needs parsing to tell.
        match self.repr {
            Repr::Raw(raw) => raw.is_empty(),
            Repr::Slice(items) => items.is_empty(),
        }
    }

    /// Number of elements (counts by iterating when decoded).
    pub fn len(&self) -> usize {
        match self.repr {
            Repr::Slice(s) => s.len(),
            Repr::Raw(_) => self.iter().count(),
        }
    }
}

impl<T> Clone for Seq<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Seq<'_, T> {}

impl<T> Clone for Repr<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Repr<'_, T> {}

impl<T> Default for Seq<'_, T> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<'a, T: Element<'a> + PartialEq> PartialEq for Seq<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<'a, T: Element<'a> + Eq> Eq for Seq<'a, T> {}

impl<'a, T: Element<'a> + fmt::Debug> fmt::Debug for Seq<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(feature = "defmt")]
impl<'a, T: Element<'a> + defmt::Format> defmt::Format for Seq<'a, T> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "[");
        for (i, element) in self.iter().enumerate() {
            if i > 0 {
                defmt::write!(f, ", ");
            }
            defmt::write!(f, "{}", element);
        }
        defmt::write!(f, "]");
    }
}

impl<'a, T: Element<'a>> IntoIterator for Seq<'a, T> {
    type Item = T;
    type IntoIter = SeqIter<'a, T>;
    fn into_iter(self) -> SeqIter<'a, T> {
        self.iter()
    }
}

impl<'a, T: Element<'a>> IntoIterator for &Seq<'a, T> {
    type Item = T;
    type IntoIter = SeqIter<'a, T>;
    fn into_iter(self) -> SeqIter<'a, T> {
        self.iter()
    }
}

impl<'a, T> From<&'a [T]> for Seq<'a, T> {
    fn from(items: &'a [T]) -> Self {
        Self::from_slice(items)
    }
}

impl<'a, T, const N: usize> From<&'a [T; N]> for Seq<'a, T> {
    fn from(items: &'a [T; N]) -> Self {
        Self::from_slice(items)
    }
}

/// Iterator over a [`Seq`].
pub struct SeqIter<'a, T> {
    repr: Repr<'a, T>,
}

impl<'a, T: Element<'a>> Iterator for SeqIter<'a, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        match &mut self.repr {
            Repr::Raw(raw) => T::next_raw(raw),
            Repr::Slice(items) => {
                let (first, rest) = items.split_first()?;
                *items = rest;
                Some(*first)
            }
        }
    }
}
