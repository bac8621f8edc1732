//! Fragments: byte ranges of the one stored archive.
//!
//! Every fragment but the last is exactly `fragment_size` bytes; the last takes the rest.
//! Because the boundaries do not depend on the total size, the builder can hash fragments
//! while it streams a payload of unknown length (stdin, a directory being archived). An
//! OCS agent only concatenates `ID-1 … ID-N`, so any split is compatible with it.
//!
//! The OCS console splits the other way round (`size / N` bytes each, the last fragment
//! takes the remainder and may be longer); [`FragmentPlan::console_split`] describes that
//! split so that an imported package keeps the console's fragment boundaries.

use std::fmt;
use std::num::NonZeroU64;

use serde::Serialize;

use crate::error::{Error, Result};

/// A 1-based fragment number, as in the URL `ID/ID-n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FragmentNumber(u32);

impl FragmentNumber {
    /// The number (1-based).
    pub fn get(self) -> u32 {
        self.0
    }

    /// The 0-based position in the plan (numbers start at 1 by construction).
    pub fn index(self) -> usize {
        self.0.saturating_sub(1) as usize
    }
}

impl fmt::Display for FragmentNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One fragment: where it lies in the stored archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fragment {
    /// Its number (1-based).
    pub number: FragmentNumber,
    /// Offset of its first byte in the archive.
    pub offset: u64,
    /// Its length in bytes (never 0).
    pub length: u64,
}

/// How a payload of a given size is cut into fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FragmentPlan {
    payload_size: u64,
    fragment_size: NonZeroU64,
    /// Fragments in the plan; the last one takes whatever the others leave.
    count: u32,
}

/// OCS agents read the fragment count from a 32-bit-safe Perl scalar and loop over it; a
/// million fragments is far beyond any sensible package and keeps the `info` file small.
pub const MAX_FRAGMENTS: u64 = 100_000;

impl FragmentPlan {
    /// Fragments of `fragment_size` bytes (the last one shorter).
    pub fn with_fragment_size(payload_size: u64, fragment_size: u64) -> Result<Self> {
        let fragment_size = NonZeroU64::new(fragment_size)
            .ok_or_else(|| Error::invalid("fragment size", "must be at least 1 byte"))?;
        let count = payload_size.div_ceil(fragment_size.get());
        if count > MAX_FRAGMENTS {
            return Err(Error::invalid(
                "fragment size",
                format!(
                    "{fragment_size} bytes makes {count} fragments of a {payload_size}-byte payload; the maximum is {MAX_FRAGMENTS}, use larger fragments"
                ),
            ));
        }
        Ok(Self {
            payload_size,
            fragment_size,
            // Bounded by MAX_FRAGMENTS just above.
            count: count as u32,
        })
    }

    /// The OCS console's split (`PackageBuilder.php::fragmentPackage`): `count` fragments,
    /// the first `count - 1` of `payload_size / count` bytes, the last one takes the
    /// remainder (up to `count - 1` bytes longer than the others). Refused when a fragment
    /// would be empty (fewer bytes than fragments).
    pub fn console_split(payload_size: u64, count: u32) -> Result<Self> {
        if u64::from(count) > MAX_FRAGMENTS {
            return Err(Error::invalid(
                "fragment count",
                format!("{count} is more than the maximum of {MAX_FRAGMENTS}"),
            ));
        }
        if count == 0 {
            return if payload_size == 0 {
                Self::with_fragment_size(0, 1)
            } else {
                Err(Error::invalid(
                    "fragment count",
                    "a payload needs at least 1 fragment",
                ))
            };
        }
        let fragment_size = NonZeroU64::new(payload_size / u64::from(count)).ok_or_else(|| {
            Error::invalid(
                "fragment count",
                format!("{payload_size} bytes cannot be split into {count} non-empty fragments"),
            )
        })?;
        Ok(Self {
            payload_size,
            fragment_size,
            count,
        })
    }

    /// At most `count` fragments of equal size (the last one shorter). Fewer are made when
    /// equal sizes need fewer (e.g. 10 bytes in 6 gives 5 of 2 bytes), never an empty one.
    pub fn with_count(payload_size: u64, count: u32) -> Result<Self> {
        if count == 0 {
            return Err(Error::invalid("fragment count", "must be at least 1"));
        }
        Self::with_fragment_size(payload_size, payload_size.div_ceil(u64::from(count)).max(1))
    }

    /// Total bytes.
    pub fn payload_size(&self) -> u64 {
        self.payload_size
    }

    /// Length of every fragment but the last.
    pub fn fragment_size(&self) -> u64 {
        self.fragment_size.get()
    }

    /// Number of fragments (`FRAGS`); 0 for an empty payload.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Fragment `n` (1-based), or `None` if the plan has no such fragment.
    pub fn fragment(&self, n: u32) -> Option<Fragment> {
        if n == 0 || n > self.count() {
            return None;
        }
        let offset = u64::from(n - 1) * self.fragment_size.get();
        let length = if n == self.count {
            self.payload_size - offset
        } else {
            self.fragment_size.get()
        };
        Some(Fragment {
            number: FragmentNumber(n),
            offset,
            length,
        })
    }

    /// Every fragment in order.
    pub fn fragments(&self) -> impl Iterator<Item = Fragment> + '_ {
        (1..=self.count()).filter_map(|n| self.fragment(n))
    }

    /// The fragment named by an agent's request path component `ID-n`, e.g. `1716800000-3`.
    pub fn fragment_for_name(&self, id: crate::PackageId, name: &str) -> Option<Fragment> {
        let number = name.strip_prefix(&id.to_string())?.strip_prefix('-')?;
        if number.is_empty()
            || !number.bytes().all(|b| b.is_ascii_digit())
            || number.starts_with('0')
        {
            return None;
        }
        self.fragment(number.parse().ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_payload_has_no_fragments() {
        let plan = FragmentPlan::with_fragment_size(0, 1024).unwrap();
        assert_eq!(plan.count(), 0);
        assert_eq!(plan.fragment(1), None);
    }

    #[test]
    fn last_fragment_takes_the_rest() {
        let plan = FragmentPlan::with_fragment_size(10, 4).unwrap();
        let lengths: Vec<_> = plan.fragments().map(|f| (f.offset, f.length)).collect();
        assert_eq!(lengths, [(0, 4), (4, 4), (8, 2)]);
        assert_eq!(plan.fragment(0), None);
        assert_eq!(plan.fragment(4), None);
    }

    #[test]
    fn count_never_makes_empty_fragments() {
        let plan = FragmentPlan::with_count(10, 6).unwrap();
        assert_eq!(plan.count(), 5);
        assert!(FragmentPlan::with_count(10, 0).is_err());
        assert!(FragmentPlan::with_fragment_size(10, 0).is_err());
        assert!(FragmentPlan::with_fragment_size(u64::MAX, 1).is_err());
    }

    #[test]
    fn fragment_names() {
        let id = crate::PackageId::new(1_716_800_000).unwrap();
        let plan = FragmentPlan::with_fragment_size(10, 4).unwrap();
        assert_eq!(
            plan.fragment_for_name(id, "1716800000-3").map(|f| f.length),
            Some(2)
        );
        for bad in [
            "1716800000-0",
            "1716800000-4",
            "1716800000-01",
            "1716800000-",
            "1716800001-1",
            "1716800000-+1",
        ] {
            assert_eq!(plan.fragment_for_name(id, bad), None, "{bad}");
        }
    }

    #[test]
    fn console_split_gives_the_remainder_to_the_last_fragment() {
        // PackageBuilder.php: 10 bytes in 3 fragments are 3, 3 and 4 bytes.
        let plan = FragmentPlan::console_split(10, 3).unwrap();
        let lengths: Vec<_> = plan.fragments().map(|f| (f.offset, f.length)).collect();
        assert_eq!(lengths, [(0, 3), (3, 3), (6, 4)]);
        assert_eq!(plan.fragment_size(), 3);
        // An even split is the same plan as Tessera's own.
        assert_eq!(
            FragmentPlan::console_split(12, 3).unwrap(),
            FragmentPlan::with_fragment_size(12, 4).unwrap()
        );
        assert_eq!(FragmentPlan::console_split(0, 0).unwrap().count(), 0);
        assert!(FragmentPlan::console_split(2, 3).is_err());
        assert!(FragmentPlan::console_split(5, 0).is_err());
    }

    proptest! {
        #[test]
        fn console_splits_tile_the_payload(size in 1u64..1_000_000, count in 1u32..2_000) {
            prop_assume!(size >= u64::from(count));
            let plan = FragmentPlan::console_split(size, count).unwrap();
            prop_assert_eq!(plan.count(), count);
            let mut next = 0;
            for f in plan.fragments() {
                prop_assert_eq!(f.offset, next);
                prop_assert!(f.length >= size / u64::from(count));
                next += f.length;
            }
            prop_assert_eq!(next, size);
        }

        #[test]
        fn fragments_tile_the_payload(size in 0u64..1_000_000, frag in 1u64..100_000) {
            let plan = FragmentPlan::with_fragment_size(size, frag).unwrap();
            let mut next = 0;
            for f in plan.fragments() {
                prop_assert_eq!(f.offset, next);
                prop_assert!(f.length >= 1 && f.length <= frag);
                next += f.length;
            }
            prop_assert_eq!(next, size);
        }
    }
}
