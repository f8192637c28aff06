//! Usage of the models, from the cost log (`ai_calls`): totals and groups for a period.
//! Pure, so the sums the API answers are the sums a test can make.

use serde::{Deserialize, Serialize};

use crate::api::Millis;

/// Longest period one question may cover.
pub const MAX_SPAN_MS: i64 = 366 * 86_400_000;
pub const DEFAULT_SPAN_MS: i64 = 30 * 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum UsageGroup {
    /// UTC days, `YYYY-MM-DD`.
    Day,
    /// The agent's role: planner, coder, fixer, tester.
    Agent,
    Model,
    Project,
}

impl UsageGroup {
    pub fn parse(s: &str) -> Option<UsageGroup> {
        match s {
            "day" => Some(UsageGroup::Day),
            "agent" => Some(UsageGroup::Agent),
            "model" => Some(UsageGroup::Model),
            "project" => Some(UsageGroup::Project),
            _ => None,
        }
    }
}

/// One logged model call, as far as usage needs it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Call {
    pub project_id: String,
    pub role: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micros: u64,
    pub latency_ms: u64,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UsageRow {
    /// The group's key (a day, a role, a model, a project id); empty for the totals.
    pub key: String,
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micros: u64,
    /// The median latency of the group's calls.
    pub latency_p50_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Usage {
    pub from: Millis,
    pub to: Millis,
    pub group: UsageGroup,
    pub totals: UsageRow,
    /// In key order.
    pub rows: Vec<UsageRow>,
}

/// The period asked for, checked: `[from, to)` in ms, `to` defaulting to `now` and `from` to
/// 30 days before `to`.
pub fn period(from: Option<i64>, to: Option<i64>, now: i64) -> Result<(i64, i64), String> {
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(to - DEFAULT_SPAN_MS);
    if from >= to {
        return Err("from must be before to".into());
    }
    if to - from > MAX_SPAN_MS {
        return Err("a period may span at most 366 days".into());
    }
    Ok((from, to))
}

/// `YYYY-MM-DD` of a UTC instant (days from the civil-from-days algorithm).
pub fn utc_day(ms: Millis) -> String {
    let days = ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn row(key: String, calls: &[&Call]) -> UsageRow {
    let mut lat: Vec<u64> = calls.iter().map(|c| c.latency_ms).collect();
    lat.sort_unstable();
    UsageRow {
        key,
        calls: calls.len() as u64,
        input_tokens: calls.iter().map(|c| c.input_tokens).sum(),
        output_tokens: calls.iter().map(|c| c.output_tokens).sum(),
        cost_micros: calls.iter().map(|c| c.cost_micros).sum(),
        latency_p50_ms: if lat.is_empty() {
            0
        } else {
            lat[(lat.len() - 1) / 2]
        },
    }
}

pub fn aggregate(calls: &[Call], group: UsageGroup, from: Millis, to: Millis) -> Usage {
    let inside: Vec<&Call> = calls
        .iter()
        .filter(|c| c.created_at >= from && c.created_at < to)
        .collect();
    let mut groups: std::collections::BTreeMap<String, Vec<&Call>> = Default::default();
    for c in &inside {
        let key = match group {
            UsageGroup::Day => utc_day(c.created_at),
            UsageGroup::Agent => c.role.clone(),
            UsageGroup::Model => c.model.clone(),
            UsageGroup::Project => c.project_id.clone(),
        };
        groups.entry(key).or_default().push(c);
    }
    Usage {
        from,
        to,
        group,
        totals: row(String::new(), &inside),
        rows: groups.into_iter().map(|(k, v)| row(k, &v)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(
        project: &str,
        role: &str,
        model: &str,
        tokens: u64,
        cost: u64,
        lat: u64,
        at: i64,
    ) -> Call {
        Call {
            project_id: project.into(),
            role: role.into(),
            model: model.into(),
            input_tokens: tokens,
            output_tokens: tokens / 2,
            cost_micros: cost,
            latency_ms: lat,
            created_at: at,
        }
    }

    const DAY: i64 = 86_400_000;
    // 2026-12-01T00:00:00Z
    const T: i64 = 1_796_083_200_000;

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(T), "2026-12-01");
        assert_eq!(utc_day(T - 1), "2026-11-30");
        assert_eq!(utc_day(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn groups_sum_to_the_totals_and_the_period_bounds_hold() {
        let calls = vec![
            call("p1", "planner", "m-a", 100, 10, 300, T),
            call("p1", "coder", "m-a", 200, 20, 100, T + 1),
            call("p2", "coder", "m-b", 400, 40, 200, T + DAY),
            call("p2", "fixer", "m-b", 800, 80, 900, T + 2 * DAY), // outside `to`
            call("p1", "coder", "m-a", 999, 99, 1, T - 1),         // before `from`
        ];
        let (from, to) = (T, T + 2 * DAY);
        for g in [
            UsageGroup::Day,
            UsageGroup::Agent,
            UsageGroup::Model,
            UsageGroup::Project,
        ] {
            let u = aggregate(&calls, g, from, to);
            assert_eq!(u.totals.calls, 3);
            assert_eq!(u.totals.input_tokens, 700);
            assert_eq!(u.totals.output_tokens, 350);
            assert_eq!(u.totals.cost_micros, 70);
            assert_eq!(u.totals.latency_p50_ms, 200);
            let sum = |f: fn(&UsageRow) -> u64| u.rows.iter().map(f).sum::<u64>();
            assert_eq!(sum(|r| r.calls), 3, "{g:?}");
            assert_eq!(sum(|r| r.cost_micros), 70, "{g:?}");
        }
        let by_day = aggregate(&calls, UsageGroup::Day, from, to);
        let keys: Vec<&str> = by_day.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["2026-12-01", "2026-12-02"]);
        let by_agent = aggregate(&calls, UsageGroup::Agent, from, to);
        assert_eq!(by_agent.rows[0].key, "coder");
        assert_eq!(
            (by_agent.rows[0].calls, by_agent.rows[0].latency_p50_ms),
            (2, 100)
        );
    }

    #[test]
    fn periods_are_checked() {
        assert_eq!(period(None, None, T), Ok((T - 30 * DAY, T)));
        assert!(period(Some(T), Some(T), T).is_err());
        assert!(period(Some(T - 400 * DAY), Some(T), T).is_err());
        assert_eq!(period(Some(T - DAY), None, T), Ok((T - DAY, T)));
        assert_eq!(UsageGroup::parse("model"), Some(UsageGroup::Model));
        assert_eq!(UsageGroup::parse("week"), None);
    }
}
