//! Rounds, work and the split of a matured stake — pure integer arithmetic.
//!
//! Work of a subscriber over a round = Σ over its outputs of amount × the number of round
//! heights at which the output may stake (mined at `r ≤ h − 150`, not spent before `h`) and
//! the subscriber is eligible (inside one of its eligibility intervals). Integrating per output
//! and interval makes the cost of a stake proportional to the outputs involved, and the cost
//! of a block zero.
//!
//! The split: `credit_s = floor(R × w_s × (1 − fee_s) / W)` exactly, fees in parts per million;
//! the pool keeps `R − Σ credits` (fees and rounding), so value is conserved to the satoshi.

use super::fee::PPM_PER_WHOLE;
use super::{FeeRate, Height, Sats, Work};
use crate::domain::conditions::COOLDOWN_BLOCKS;

/// `floor(a × b / c)` exactly, for any u128 inputs (`c > 0`), through a 256-bit product.
pub fn mul_div(a: u128, b: u128, c: u128) -> u128 {
    if c == 0 {
        return 0;
    }
    if let Some(p) = a.checked_mul(b) {
        return p / c;
    }
    // 256-bit product as (hi, lo) from 64-bit limbs.
    let (a1, a0) = (a >> 64, a & u128::from(u64::MAX));
    let (b1, b0) = (b >> 64, b & u128::from(u64::MAX));
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & u128::from(u64::MAX)) + (p10 & u128::from(u64::MAX));
    let lo = (p00 & u128::from(u64::MAX)) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    // Long division of (hi, lo) by c, one bit at a time.
    let mut rem: u128 = 0;
    let mut quotient: u128 = 0;
    for i in (0..256).rev() {
        let bit = if i >= 128 {
            (hi >> (i - 128)) & 1
        } else {
            (lo >> i) & 1
        };
        let overflow = rem >> 127 == 1;
        rem = (rem << 1) | bit;
        if overflow || rem >= c {
            rem = rem.wrapping_sub(c);
            if i < 128 {
                quotient |= 1 << i;
            }
        }
    }
    quotient
}

/// An output as work sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputSpan {
    /// Value.
    pub amount: Sats,
    /// Height mined at.
    pub mined: Height,
    /// Height spent at (it still counts at that height: "not spent before h").
    pub spent: Option<Height>,
}

/// Work over the heights `first..=last` of outputs held in eligibility intervals
/// `[from, to)` (`to` `None`: still open).
pub fn work_over(
    outputs: &[OutputSpan],
    intervals: &[(Height, Option<Height>)],
    first: Height,
    last: Height,
) -> Work {
    let mut total: u128 = 0;
    for o in outputs {
        if o.amount.0 <= 0 {
            continue;
        }
        let from = (o.mined + COOLDOWN_BLOCKS).max(first);
        let to = o.spent.unwrap_or(Height::MAX).min(last);
        if from > to {
            continue;
        }
        for &(i_from, i_to) in intervals {
            let lo = from.max(i_from);
            let hi = to.min(i_to.map_or(Height::MAX, |t| t - 1));
            if lo <= hi {
                total = total.saturating_add(o.amount.0 as u128 * (hi - lo + 1) as u128);
            }
        }
    }
    Work(total)
}

/// One subscriber's share of a stake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Who.
    pub identity: String,
    /// Its work in the round.
    pub work: Work,
    /// Its fee rate at the stake's height.
    pub fee: FeeRate,
    /// What it is credited.
    pub credit: Sats,
    /// What the fee took from its share.
    pub fee_amount: Sats,
}

/// The split of a reward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Per subscriber, in input order; only those with work.
    pub shares: Vec<Share>,
    /// What the pool keeps: fees and rounding.
    pub pool_keep: Sats,
    /// Σ work.
    pub total_work: Work,
}

/// Splits `reward` by `work` (identity, work, fee rate). `Σ credits + pool_keep == reward`.
pub fn split(reward: Sats, work: &[(String, Work, FeeRate)]) -> Split {
    let total: u128 = work
        .iter()
        .map(|(_, w, _)| w.0)
        .fold(0u128, u128::saturating_add);
    let r = reward.0.max(0) as u128;
    let mut shares = Vec::new();
    let mut credited: u128 = 0;
    if total > 0 {
        for (identity, w, fee) in work {
            if w.0 == 0 {
                continue;
            }
            let keep_ppm = u128::from(PPM_PER_WHOLE - fee.ppm());
            let gross = mul_div(r, w.0, total);
            // floor(R × (1 − fee) × w / W) exactly: R × keep fits in u128, the product with w
            // may not, which mul_div handles. (W beyond 3.4 × 10^32 cannot happen: it would
            // need more coins than exist; then the fee applies to the floored gross share.)
            let credit = match total.checked_mul(u128::from(PPM_PER_WHOLE)) {
                Some(denominator) => mul_div(r * keep_ppm, w.0, denominator),
                None => mul_div(gross, keep_ppm, u128::from(PPM_PER_WHOLE)),
            };
            credited += credit;
            shares.push(Share {
                identity: identity.clone(),
                work: *w,
                fee: *fee,
                credit: Sats(credit as i64),
                fee_amount: Sats(gross.saturating_sub(credit) as i64),
            });
        }
    }
    Split {
        shares,
        pool_keep: Sats((r - credited.min(r)) as i64),
        total_work: Work(total),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*, for reproducible random cases.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            if n == 0 { 0 } else { self.next() % n }
        }
    }

    #[test]
    fn mul_div_is_exact_beyond_128_bits() {
        assert_eq!(mul_div(10, 20, 3), 66);
        let big = u128::MAX / 3;
        assert_eq!(mul_div(big, 6, 2), big * 3);
        assert_eq!(mul_div(u128::MAX, u128::MAX, u128::MAX), u128::MAX);
        assert_eq!(
            mul_div(1u128 << 100, 1u128 << 100, 1u128 << 120),
            1u128 << 80
        );
        let mut rng = Rng(7);
        for _ in 0..2000 {
            let (a, b, c) = (
                rng.next() as u128,
                rng.next() as u128,
                (rng.next() as u128).max(1),
            );
            assert_eq!(mul_div(a, b, c), a * b / c);
        }
    }

    #[test]
    fn work_counts_eligible_heights_inside_intervals() {
        let o = |amount: i64, mined, spent| OutputSpan {
            amount: Sats(amount),
            mined,
            spent,
        };
        // Mined at 10: may stake from 160. Interval [150, 200): heights 160..=199.
        assert_eq!(
            work_over(&[o(5, 10, None)], &[(150, Some(200))], 1, 1000),
            Work(5 * 40)
        );
        // Spent at 170: still counts at 170.
        assert_eq!(
            work_over(&[o(5, 10, Some(170))], &[(0, None)], 1, 1000),
            Work(5 * 11)
        );
        // Round bounds.
        assert_eq!(
            work_over(&[o(5, 10, None)], &[(0, None)], 165, 170),
            Work(5 * 6)
        );
        // Two intervals.
        assert_eq!(
            work_over(
                &[o(1, 0, None)],
                &[(150, Some(152)), (160, Some(161))],
                1,
                1000
            ),
            Work(3)
        );
        assert_eq!(work_over(&[o(1, 0, None)], &[], 1, 1000), Work(0));
    }

    /// Brute force: the definition, height by height.
    fn brute(
        outputs: &[OutputSpan],
        intervals: &[(Height, Option<Height>)],
        first: Height,
        last: Height,
    ) -> u128 {
        let mut total = 0u128;
        for h in first..=last {
            let eligible = intervals
                .iter()
                .any(|&(f, t)| f <= h && t.is_none_or(|t| h < t));
            if !eligible {
                continue;
            }
            for o in outputs {
                if o.mined <= h - COOLDOWN_BLOCKS && o.spent.is_none_or(|s| s >= h) {
                    total += o.amount.0 as u128;
                }
            }
        }
        total
    }

    #[test]
    fn work_matches_the_definition() {
        let mut rng = Rng(11);
        for _ in 0..300 {
            let outputs: Vec<OutputSpan> = (0..rng.below(5))
                .map(|_| {
                    let mined = rng.below(300) as i64;
                    let spent = (rng.below(2) == 0).then(|| mined + rng.below(400) as i64);
                    OutputSpan {
                        amount: Sats(rng.below(1000) as i64),
                        mined,
                        spent,
                    }
                })
                .collect();
            let mut intervals = Vec::new();
            let mut at = rng.below(200) as i64;
            for _ in 0..rng.below(3) {
                let len = 1 + rng.below(150) as i64;
                let open = rng.below(4) == 0;
                intervals.push((at, (!open).then_some(at + len)));
                if open {
                    break;
                }
                at += len + rng.below(50) as i64;
            }
            let first = 150 + rng.below(200) as i64;
            let last = first + rng.below(300) as i64;
            assert_eq!(
                work_over(&outputs, &intervals, first, last).0,
                brute(&outputs, &intervals, first, last)
            );
        }
    }

    #[test]
    fn split_conserves_value_follows_work_and_respects_fees() {
        let mut rng = Rng(5);
        for _ in 0..500 {
            let reward = Sats(1 + rng.below(100 * 100_000_000) as i64);
            let n = rng.below(30) as usize;
            let work: Vec<(String, Work, FeeRate)> = (0..n)
                .map(|i| {
                    let fee = FeeRate::from_ppm(rng.below(1_000_001) as u32).unwrap_or_default();
                    (format!("s{i}"), Work(u128::from(rng.below(1 << 40))), fee)
                })
                .collect();
            let s = split(reward, &work);
            let credits: i64 = s.shares.iter().map(|x| x.credit.0).sum();
            assert_eq!(credits + s.pool_keep.0, reward.0, "value conserved");
            assert!(s.pool_keep.0 >= 0);
            let total: u128 = work.iter().map(|w| w.1.0).sum();
            for share in &s.shares {
                // The exact rational credit, compared by cross-multiplication.
                let keep = u128::from(1_000_000 - share.fee.ppm());
                let exact_num = (reward.0 as u128) * share.work.0;
                let credit = share.credit.0 as u128;
                // credit = floor(R·w·keep / (W·1e6)), by cross-multiplication (it fits u128 here):
                // credit·W·1e6 ≤ R·w·keep < (credit+1)·W·1e6.
                let d = total * 1_000_000;
                assert!(credit * d <= exact_num * keep && exact_num * keep < (credit + 1) * d);
                // The fee is what separates the credit from the gross share floor(R·w/W).
                let gross = share.credit.0 as u128 + share.fee_amount.0 as u128;
                assert!(gross * total <= exact_num && exact_num < (gross + 1) * total);
            }
        }
    }

    #[test]
    fn split_edge_cases() {
        let fee = FeeRate::parse_percent("5").unwrap_or_default();
        let s = split(Sats(300_000_000), &[]);
        assert_eq!(
            (s.shares.len(), s.pool_keep),
            (0, Sats(300_000_000)),
            "no work: the pool keeps R"
        );
        let s = split(Sats(300_000_000), &[("a".into(), Work(0), fee)]);
        assert_eq!(s.pool_keep, Sats(300_000_000));
        // Equal work, 5 %: each gets floor(R/2 × 0.95).
        let s = split(
            Sats(300_000_001),
            &[("a".into(), Work(7), fee), ("b".into(), Work(7), fee)],
        );
        assert_eq!(s.shares[0].credit, Sats(142_500_000));
        assert_eq!(s.shares[1].credit, Sats(142_500_000));
        assert_eq!(s.pool_keep, Sats(300_000_001 - 285_000_000));
        // 10^7 VRSC over 10^5 blocks of work does not overflow.
        let huge = Work(10_000_000u128 * 100_000_000 * 100_000);
        let s = split(
            Sats(300_000_000),
            &[
                ("a".into(), huge, fee),
                ("b".into(), huge, FeeRate::default()),
            ],
        );
        assert_eq!(s.shares[0].credit, Sats(142_500_000));
        assert_eq!(s.shares[1].credit, Sats(150_000_000));
        assert_eq!(
            s.shares.iter().map(|x| x.credit.0).sum::<i64>() + s.pool_keep.0,
            300_000_000
        );
    }
}
