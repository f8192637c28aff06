//! Credits: what an org may spend on priced models, in micro-dollars. The rules are here; the
//! ledger is D1's (`durable-objects` `repo::Credits`). A model with a price
//! (`agent::llm::cost_micros`) needs credit to start a generation and to make each call; the
//! embedded local model has none and never needs any.

use crate::agent::llm::{cost_micros, Usage};

/// What a new org starts with unless `KILN_CREDIT_GRANT_MICROS` says otherwise: $5.
pub const DEFAULT_GRANT_MICROS: u64 = 5_000_000;

/// What a generation on a priced model holds of the org's credit when it starts, unless
/// `KILN_CREDIT_HOLD_MICROS` says otherwise: $0.50. Its calls spend the hold first; what is
/// left of it goes back when the generation ends. An org whose credit covers one hold and
/// not two runs one generation at a time.
pub const DEFAULT_HOLD_MICROS: u64 = 500_000;

/// The hold from `KILN_CREDIT_HOLD_MICROS` (unset or unreadable: the default; at least 1).
pub fn hold(setting: Option<&str>) -> u64 {
    setting
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_HOLD_MICROS, |v| v.clamp(1, MAX_GRANT_MICROS))
}

/// How a call's cost is paid with `held` left of the generation's hold: (from the hold, beyond
/// it, from the balance).
pub fn split_cost(cost: u64, held: u64) -> (u64, u64) {
    let from_hold = cost.min(held);
    (from_hold, cost - from_hold)
}

/// The largest single grant (a typo's guard): $100,000.
pub const MAX_GRANT_MICROS: u64 = 100_000_000_000;

/// Whether calls to `model` are paid for from the org's credit.
pub fn needs_credit(model: &str) -> bool {
    let million = Usage {
        input_tokens: 1_000_000,
        output_tokens: 1_000_000,
    };
    cost_micros(model, million) > 0
}

/// A new org's starting credit from `KILN_CREDIT_GRANT_MICROS` (unset or unreadable: the
/// default).
pub fn starting_grant(setting: Option<&str>) -> u64 {
    setting
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_GRANT_MICROS, |v| v.min(MAX_GRANT_MICROS))
}

/// Why a generation may not start or go on: the org's credit is spent.
pub fn spent_message(balance_micros: u64) -> String {
    format!(
        "your org's credit is spent ({} left): a priced model needs credit; ask your Kiln \
         operator for more, or use the local model",
        dollars(balance_micros)
    )
}

/// `$1.23` for 1,230,000 micro-dollars (cents, rounded down).
pub fn dollars(micros: u64) -> String {
    format!(
        "${}.{:02}",
        micros / 1_000_000,
        (micros % 1_000_000) / 10_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priced_models_need_credit_and_the_local_one_does_not() {
        assert!(needs_credit("gpt-4o-mini"));
        assert!(needs_credit("openai/gpt-4o"));
        assert!(needs_credit("claude-sonnet-4-5"));
        assert!(!needs_credit("qwen2.5-coder-1.5b-instruct-q4_k_m"));
        assert!(!needs_credit("kiln-scripted"));
    }

    #[test]
    fn the_starting_grant_is_configurable_and_bounded() {
        assert_eq!(starting_grant(None), DEFAULT_GRANT_MICROS);
        assert_eq!(starting_grant(Some("0")), 0);
        assert_eq!(starting_grant(Some(" 250 ")), 250);
        assert_eq!(starting_grant(Some("lots")), DEFAULT_GRANT_MICROS);
        assert_eq!(starting_grant(Some("999999999999999")), MAX_GRANT_MICROS);
    }

    #[test]
    fn a_call_spends_the_hold_first() {
        assert_eq!(split_cost(300, 500), (300, 0));
        assert_eq!(split_cost(315, 300), (300, 15));
        assert_eq!(split_cost(50, 0), (0, 50));
        assert_eq!(hold(None), DEFAULT_HOLD_MICROS);
        assert_eq!(hold(Some("0")), 1);
        assert_eq!(hold(Some("300")), 300);
    }

    #[test]
    fn amounts_read_as_dollars() {
        assert_eq!(dollars(5_000_000), "$5.00");
        assert_eq!(dollars(1_239_999), "$1.23");
        assert_eq!(dollars(0), "$0.00");
        assert!(spent_message(0).contains("$0.00 left"));
    }
}
