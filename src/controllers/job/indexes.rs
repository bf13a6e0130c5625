//! Sets of completion indexes as sorted, disjoint ranges: the form Kubernetes writes them in
//! (`completedIndexes: "0-4999,5002"`), kept as ranges so a Job of 10,000 completions costs
//! each reconcile a few ranges, not 10,000 entries (pure).

use std::fmt;

/// A set of non-negative indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexSet {
    /// Sorted, disjoint and not adjacent: `(first, last)` inclusive.
    ranges: Vec<(i64, i64)>,
}

impl IndexSet {
    /// Parses Kubernetes' form (`"1,3-5,7"`); malformed parts are skipped.
    pub fn parse(text: &str) -> IndexSet {
        let mut set = IndexSet::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let range = match part.split_once('-') {
                Some((a, b)) => a.parse().ok().zip(b.parse().ok()),
                None => part.parse().ok().map(|n| (n, n)),
            };
            if let Some((a, b)) = range.filter(|(a, b)| a <= b) {
                set.insert_range(a, b);
            }
        }
        set
    }

    /// Adds `first..=last`, merging with neighbouring ranges.
    fn insert_range(&mut self, first: i64, last: i64) {
        // Ranges ending before `first - 1` stay apart; so do those starting after `last + 1`.
        let start = self
            .ranges
            .partition_point(|&(_, b)| b < first.saturating_sub(1));
        let end = self
            .ranges
            .partition_point(|&(a, _)| a <= last.saturating_add(1));
        if start == end {
            self.ranges.insert(start, (first, last));
            return;
        }
        let merged = (
            first.min(self.ranges[start].0),
            last.max(self.ranges[end - 1].1),
        );
        self.ranges.splice(start..end, [merged]);
    }

    /// Adds one index.
    pub fn insert(&mut self, index: i64) {
        self.insert_range(index, index);
    }

    /// Whether `index` is in the set.
    pub fn contains(&self, index: i64) -> bool {
        let i = self.ranges.partition_point(|&(_, b)| b < index);
        self.ranges.get(i).is_some_and(|&(a, _)| a <= index)
    }

    /// How many indexes.
    pub fn len(&self) -> usize {
        self.ranges.iter().map(|(a, b)| (b - a + 1) as usize).sum()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many of this set's indexes are also in `other`.
    pub fn count_in(&self, other: &IndexSet) -> usize {
        let mut count = 0;
        for &(a, b) in &self.ranges {
            for &(c, d) in &other.ranges {
                let (lo, hi) = (a.max(c), b.min(d));
                if lo <= hi {
                    count += (hi - lo + 1) as usize;
                }
            }
        }
        count
    }

    /// This set without the indexes of `other`.
    pub fn without(&self, other: &IndexSet) -> IndexSet {
        let mut out = IndexSet::default();
        for &(a, b) in &self.ranges {
            let mut next = a;
            for &(c, d) in &other.ranges {
                if d < next || c > b {
                    continue;
                }
                if c > next {
                    out.ranges.push((next, c - 1));
                }
                next = d + 1;
            }
            if next <= b {
                out.ranges.push((next, b));
            }
        }
        out
    }

    /// The indexes in `0..below` that are not in the set, in order.
    pub fn missing_below(&self, below: i64) -> impl Iterator<Item = i64> + '_ {
        let mut next = 0;
        let mut ranges = self.ranges.iter().peekable();
        std::iter::from_fn(move || {
            while let Some(&&(a, b)) = ranges.peek() {
                if next < a {
                    break;
                }
                next = next.max(b + 1);
                ranges.next();
            }
            (next < below).then(|| {
                next += 1;
                next - 1
            })
        })
    }
}

impl fmt::Display for IndexSet {
    /// Kubernetes' form: ascending, runs as `a-b`, comma-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}-{b}")?;
            }
        }
        Ok(())
    }
}

impl FromIterator<i64> for IndexSet {
    fn from_iter<I: IntoIterator<Item = i64>>(iter: I) -> Self {
        let mut set = IndexSet::default();
        for i in iter {
            set.insert(i);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_formats_and_merges_like_kubernetes() {
        let set = IndexSet::parse("0-2,5,7-8");
        assert_eq!(set.to_string(), "0-2,5,7-8");
        assert_eq!(set.len(), 6);
        assert_eq!(IndexSet::parse("").to_string(), "");
        assert_eq!(IndexSet::parse("3,1,2").to_string(), "1-3");
        let mut s = IndexSet::parse("0-2,4");
        s.insert(3);
        assert_eq!(s.to_string(), "0-4");
        s.insert(10);
        s.insert(9);
        s.insert(3);
        assert_eq!(s.to_string(), "0-4,9-10");
        assert_eq!(IndexSet::parse("x,4-2,7").to_string(), "7");
    }

    #[test]
    fn membership_difference_intersection_and_gaps() {
        let set = IndexSet::parse("0-2,5,7-8");
        assert!(set.contains(0) && set.contains(5) && set.contains(8));
        assert!(!set.contains(3) && !set.contains(6) && !set.contains(9) && !set.contains(-1));
        assert_eq!(set.count_in(&IndexSet::parse("1-7")), 4);
        assert_eq!(set.without(&IndexSet::parse("1,7-20")).to_string(), "0,2,5");
        let gaps: Vec<i64> = set.missing_below(11).collect();
        assert_eq!(gaps, [3, 4, 6, 9, 10]);
        assert_eq!(
            IndexSet::default().missing_below(3).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        let every: IndexSet = (0..10_000).collect();
        assert_eq!(every.to_string(), "0-9999");
        assert_eq!(every.missing_below(10_000).next(), None);
    }
}
