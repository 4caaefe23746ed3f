//! Topic alias tables (5.0): topics stored in a region of the store as entries of
//! `[alias u16][stamp u32][len u16][topic bytes]`. One table maps the broker's aliases to
//! topics; the other remembers the aliases we assigned, replacing the least recently used.

const ENTRY_HEADER: usize = 8;

#[derive(Debug, Default)]
pub(crate) struct Aliases {
    used: usize,
    count: u16,
}

struct Entry {
    at: usize,
    alias: u16,
    stamp: u32,
    len: usize,
}

impl Aliases {
    fn entries<'r>(&self, region: &'r [u8]) -> impl Iterator<Item = Entry> + 'r {
        let used = self.used;
        let mut at = 0;
        core::iter::from_fn(move || {
            let h = region.get(at..at + ENTRY_HEADER).filter(|_| at < used)?;
            let e = Entry {
                at,
                alias: u16::from_le_bytes([h[0], h[1]]),
                stamp: u32::from_le_bytes([h[2], h[3], h[4], h[5]]),
                len: usize::from(u16::from_le_bytes([h[6], h[7]])),
            };
            at += ENTRY_HEADER + e.len;
            Some(e)
        })
    }

    fn topic<'r>(region: &'r [u8], e: &Entry) -> &'r [u8] {
        region
            .get(e.at + ENTRY_HEADER..e.at + ENTRY_HEADER + e.len)
            .unwrap_or_default()
    }

    pub(crate) fn count(&self) -> u16 {
        self.count
    }

    /// The topic stored under `alias`.
    pub(crate) fn topic_of<'r>(&self, region: &'r [u8], alias: u16) -> Option<&'r str> {
        let e = self.entries(region).find(|e| e.alias == alias)?;
        core::str::from_utf8(Self::topic(region, &e)).ok()
    }

    /// The alias of `topic`.
    pub(crate) fn alias_of(&self, region: &[u8], topic: &str) -> Option<u16> {
        self.entries(region)
            .find(|e| Self::topic(region, e) == topic.as_bytes())
            .map(|e| e.alias)
    }

    /// Marks `alias` used at `stamp`.
    pub(crate) fn touch(&self, region: &mut [u8], alias: u16, stamp: u32) {
        let found = self
            .entries(region)
            .find(|e| e.alias == alias)
            .map(|e| e.at);
        if let Some(at) = found {
            region[at + 2..at + 6].copy_from_slice(&stamp.to_le_bytes());
        }
    }

    /// The least recently used alias.
    pub(crate) fn least_recent(&self, region: &[u8]) -> Option<u16> {
        self.entries(region)
            .min_by_key(|e| e.stamp)
            .map(|e| e.alias)
    }

    /// Stores `topic` under `alias`, replacing what `alias` held; `false` when it does not fit.
    pub(crate) fn set(&mut self, region: &mut [u8], alias: u16, topic: &str, stamp: u32) -> bool {
        self.remove(region, alias);
        let size = ENTRY_HEADER + topic.len();
        let Ok(len) = u16::try_from(topic.len()) else {
            return false;
        };
        if region.len() - self.used < size {
            return false;
        }
        let at = self.used;
        region[at..at + 2].copy_from_slice(&alias.to_le_bytes());
        region[at + 2..at + 6].copy_from_slice(&stamp.to_le_bytes());
        region[at + 6..at + 8].copy_from_slice(&len.to_le_bytes());
        region[at + ENTRY_HEADER..at + size].copy_from_slice(topic.as_bytes());
        self.used += size;
        self.count += 1;
        true
    }

    fn remove(&mut self, region: &mut [u8], alias: u16) {
        let found = self.entries(region).find(|e| e.alias == alias);
        if let Some(e) = found.map(|e| (e.at, e.len)) {
            let (at, len) = e;
            let size = ENTRY_HEADER + len;
            region.copy_within(at + size..self.used, at);
            self.used -= size;
            self.count -= 1;
        }
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replace_lookup_and_lru() {
        let mut region = [0u8; 64];
        let mut a = Aliases::default();
        assert!(a.set(&mut region, 1, "a/b", 1));
        assert!(a.set(&mut region, 2, "c", 2));
        assert_eq!(a.topic_of(&region, 1), Some("a/b"));
        assert!(a.set(&mut region, 1, "x/y/z", 3));
        assert_eq!(a.topic_of(&region, 1), Some("x/y/z"));
        assert_eq!(a.count(), 2);
        assert_eq!(a.least_recent(&region), Some(2));
        assert_eq!(a.alias_of(&region, "c"), Some(2));
        a.touch(&mut region, 2, 9);
        assert_eq!(a.least_recent(&region), Some(1));
        assert!(!a.set(&mut region, 3, &"t".repeat(60), 10));
    }
}
