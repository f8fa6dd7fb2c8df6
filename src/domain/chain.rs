//! Per-chain consensus numbers the pool's money decisions rest on, as verusd derives them
//! (`SetThisChain` in `src/rpc/pbaasrpc.cpp`): no RPC prints them, so they follow from the
//! chain's block time, which `getcurrency` prints for PBaaS chain definitions.

use super::Height;

/// Coinbase outputs (stake rewards) are spendable after this many confirmations on VRSC and on
/// every chain whose blocks come a minute or more apart; until then only a StakeGuard proof
/// can spend a reward, and verusd refuses reorganisations deeper than this minus one.
pub const COINBASE_MATURITY: Height = 100;

/// The most a chain's coinbase maturity can be (PBaaS chains with faster blocks).
pub const MAX_COINBASE_MATURITY: Height = 149;

/// The blocks between a block and the payment transactions it confirms that the pool treats as
/// final: a payment this deep is never reorganised away (verusd refuses reorganisations deeper
/// than the coinbase maturity minus one), so it is no longer polled.
pub const FINAL_CONFIRMATIONS: Height = COINBASE_MATURITY;

/// A chain's coinbase maturity from its block time in seconds (verusd: 100 blocks of a
/// minute, scaled up for faster blocks and capped at 149). `None` (not printed: VRSC's own
/// definition before PBaaS) is VRSC's 100.
pub fn coinbase_maturity(block_time_secs: Option<u64>) -> Height {
    match block_time_secs {
        Some(t) if t > 0 && t < 60 => {
            let scaled = Height::try_from(100 * 60 / t).unwrap_or(MAX_COINBASE_MATURITY);
            scaled.clamp(COINBASE_MATURITY, MAX_COINBASE_MATURITY)
        }
        _ => COINBASE_MATURITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maturity_follows_the_block_time_like_verusd() {
        assert_eq!(coinbase_maturity(None), 100);
        assert_eq!(coinbase_maturity(Some(60)), 100);
        assert_eq!(coinbase_maturity(Some(120)), 100);
        assert_eq!(coinbase_maturity(Some(50)), 120);
        assert_eq!(coinbase_maturity(Some(45)), 133);
        assert_eq!(coinbase_maturity(Some(30)), 149, "capped");
        assert_eq!(coinbase_maturity(Some(1)), 149);
        assert_eq!(
            coinbase_maturity(Some(0)),
            100,
            "a zero block time is not a chain"
        );
    }
}
