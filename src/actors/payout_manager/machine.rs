//! The payment state machine's decisions, as pure functions of what the daemon and the books
//! say: which operation outcome is known, which transaction is a payment's, when an unknown
//! outcome may fail, and what a sent payment becomes. The actor fetches the inputs and writes
//! the outcomes; these decide.

use crate::daemon::types::{Operation, Tx};
use crate::domain::{Height, PaymentStatus};
use crate::store::payments::Payment;

/// The outputs a payment pays, sorted: what identifies its transaction on the chain.
pub type Outputs = Vec<(String, i64)>;

pub fn outputs_of(p: &Payment) -> Outputs {
    let mut o: Outputs = p.outputs.iter().map(|(a, s)| (a.clone(), s.0)).collect();
    o.sort();
    o
}

/// Whether a transaction spends from `pool`, and what it pays to others than `pool` (its
/// change), sorted.
pub fn paid_by(tx: &Tx, pool: &str) -> Option<Outputs> {
    let from_pool = tx.vin.iter().any(|v| {
        v.address.as_deref() == Some(pool)
            || v.addresses
                .as_ref()
                .is_some_and(|a| a.iter().any(|x| x == pool))
    });
    if !from_pool {
        return None;
    }
    let mut paid: Outputs = tx
        .vout
        .iter()
        .filter_map(|o| {
            o.script_pub_key
                .addresses
                .first()
                .map(|a| (a.clone(), o.value_sat))
        })
        .filter(|(a, _)| a != pool)
        .collect();
    paid.sort();
    Some(paid)
}

/// What the daemon says about a submitted payment's operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutcome {
    /// It made this transaction.
    Sent(String),
    /// Still queued or executing.
    Running,
    /// Failed, cancelled, or forgotten (a daemon restart): the wallet may still hold and
    /// later broadcast a transaction, so the outcome is resolved from the chain (architecture §6).
    Unknown(String),
}

/// The outcome of operation `opid` among the daemon's answers (a pure decision).
pub fn op_outcome(opid: &str, ops: &[Operation]) -> OpOutcome {
    match ops.iter().find(|o| o.id == opid) {
        Some(op) if op.status == "success" => match &op.result {
            Some(r) => OpOutcome::Sent(r.txid.clone()),
            None => OpOutcome::Unknown(format!("operation {opid} succeeded without a txid")),
        },
        Some(op) if op.status == "queued" || op.status == "executing" => OpOutcome::Running,
        Some(op) => OpOutcome::Unknown(match &op.error {
            Some(e) => format!("operation {opid} {}: {}: {}", op.status, e.code, e.message),
            None => format!("operation {opid} {}", op.status),
        }),
        None => OpOutcome::Unknown(format!(
            "the daemon no longer knows operation {opid} (it restarted)"
        )),
    }
}

/// The last height any transaction made for `p` can be mined at: a payment whose outcome is
/// unknown fails only above it (its timeout, or the expiry of its transaction if later).
pub fn deadline(p: &Payment, timeout_blocks: i64) -> Height {
    (p.planned_height + timeout_blocks).max(p.expiry_height.unwrap_or(0))
}

/// The last height a transaction made by `sendcurrency` at `tip` can be mined at: verusd gives
/// it `tip at the call + 1 + expiry delta` (one more for a block that arrives between reading
/// the tip and the call).
pub fn expiry_bound(tip: Height, expiry_delta: i64) -> Height {
    tip + 2 + expiry_delta
}

/// What a sent (or confirmed, not yet final) payment becomes once the daemon showed its
/// transaction with `confirmations` (0 while it is not mined).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentStep {
    /// Deep enough: in flight → paid.
    Confirm,
    /// Its block was disconnected: paid → in flight, SENT until it confirms again.
    Unconfirm,
    /// Nothing changes.
    Stay,
}

/// The step of a sent or confirmed payment (`required`: `payment_confirmations`).
pub fn sent_step(status: PaymentStatus, confirmations: i64, required: i64) -> SentStep {
    match (status, confirmations >= required) {
        (PaymentStatus::Sent, true) => SentStep::Confirm,
        (PaymentStatus::Confirmed, false) => SentStep::Unconfirm,
        _ => SentStep::Stay,
    }
}

/// What a payment whose outcome is unknown becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownStep {
    /// This transaction is its own: SENT.
    Take(String),
    /// Proved never to be mined: FAILED, balances pending again.
    Fail,
    /// Not yet known.
    Wait,
}

/// The step of a payment whose outcome is unknown: `found`, the pool identity's unlinked
/// transaction paying exactly its outputs; `running`, a payment with the same outputs whose
/// operation still runs (its transaction is not this one's to take).
pub fn unknown_step(found: Option<&str>, running: bool, tip: Height, until: Height) -> UnknownStep {
    match found {
        _ if running => UnknownStep::Wait,
        Some(txid) => UnknownStep::Take(txid.to_owned()),
        None if tip > until => UnknownStep::Fail,
        None => UnknownStep::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::types::{OperationError, OperationResult};
    use crate::domain::Sats;

    fn op(id: &str, status: &str) -> Operation {
        serde_json::from_value(serde_json::json!({"id": id, "status": status}))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn payment(planned: Height, expiry: Option<Height>) -> Payment {
        Payment {
            id: 1,
            chain: "VRSC".into(),
            status: PaymentStatus::Submitted,
            opid: Some("opid-1".into()),
            txid: None,
            total: Sats(5),
            planned_height: planned,
            sent_height: None,
            confirmed_height: None,
            expiry_height: expiry,
            error: None,
            created_at: chrono::Utc::now(),
            outputs: vec![("iB".into(), Sats(3)), ("iA".into(), Sats(2))],
        }
    }

    #[test]
    fn an_operation_is_sent_running_or_unknown() {
        let mut done = op("opid-1", "success");
        done.result = Some(OperationResult { txid: "t1".into() });
        assert_eq!(op_outcome("opid-1", &[done]), OpOutcome::Sent("t1".into()));
        for running in ["queued", "executing"] {
            assert_eq!(
                op_outcome("opid-1", &[op("opid-1", running)]),
                OpOutcome::Running
            );
        }
        // Failed, cancelled, forgotten, or a success without a txid: the wallet may still
        // hold a transaction, so none of them is a failure.
        let mut failed = op("opid-1", "failed");
        failed.error = Some(OperationError {
            code: -6,
            message: "Insufficient funds".into(),
        });
        for ops in [
            vec![failed],
            vec![op("opid-1", "cancelled")],
            vec![],
            vec![op("opid-1", "success")],
            vec![op("opid-2", "success")],
        ] {
            assert!(
                matches!(op_outcome("opid-1", &ops), OpOutcome::Unknown(_)),
                "{ops:?}"
            );
        }
    }

    #[test]
    fn an_unknown_outcome_fails_only_past_its_timeout_and_its_expiry() {
        assert_eq!(deadline(&payment(100, None), 40), 140);
        assert_eq!(deadline(&payment(100, Some(122)), 40), 140);
        assert_eq!(
            deadline(&payment(100, Some(163)), 40),
            163,
            "a later expiry wins"
        );
        assert_eq!(expiry_bound(100, 20), 122);
        assert_eq!(unknown_step(None, false, 140, 140), UnknownStep::Wait);
        assert_eq!(unknown_step(None, false, 141, 140), UnknownStep::Fail);
        assert_eq!(
            unknown_step(Some("t"), false, 141, 140),
            UnknownStep::Take("t".into())
        );
        assert_eq!(
            unknown_step(Some("t"), true, 141, 140),
            UnknownStep::Wait,
            "never a running operation's transaction"
        );
        assert_eq!(unknown_step(None, true, 200, 140), UnknownStep::Wait);
    }

    #[test]
    fn sent_payments_confirm_and_lose_confirmations() {
        assert_eq!(sent_step(PaymentStatus::Sent, 10, 10), SentStep::Confirm);
        assert_eq!(sent_step(PaymentStatus::Sent, 9, 10), SentStep::Stay);
        assert_eq!(
            sent_step(PaymentStatus::Confirmed, 0, 10),
            SentStep::Unconfirm
        );
        assert_eq!(sent_step(PaymentStatus::Confirmed, 12, 10), SentStep::Stay);
    }

    #[test]
    fn a_payment_is_recognised_by_exactly_its_outputs_from_the_pool() {
        let tx: Tx = serde_json::from_value(serde_json::json!({
            "txid": "t", "expiryheight": 0,
            "vin": [{"txid": "p", "vout": 0, "address": "iPOOL", "valueSat": 10}],
            "vout": [
                {"n": 0, "value": 0.00000002, "valueSat": 2, "scriptPubKey": {"type": "cryptocondition", "addresses": ["iA"]}},
                {"n": 1, "value": 0.00000003, "valueSat": 3, "scriptPubKey": {"type": "cryptocondition", "addresses": ["iB"]}},
                {"n": 2, "value": 0.00000004, "valueSat": 4, "scriptPubKey": {"type": "cryptocondition", "addresses": ["iPOOL"]}}
            ]
        })).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            paid_by(&tx, "iPOOL"),
            Some(outputs_of(&payment(1, None))),
            "change excluded, order ignored"
        );
        assert_eq!(paid_by(&tx, "iOTHER"), None, "not from the pool identity");
    }
}
