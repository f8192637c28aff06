//! Outgoing notifications: a project's registered URLs receive `generation.completed` and
//! `generation.failed`, signed like inbound webhooks (`Kiln-Signature`, `webhooks::sign`),
//! retried with exponential backoff until they answer 2xx or the attempts run out. The rules
//! (events, payload, destinations, backoff) are here; the queue consumer delivers.

use serde::{Deserialize, Serialize};

/// The events a target can receive.
pub const EVENTS: [&str; 2] = ["generation.completed", "generation.failed"];

/// Attempts per event and target (the first included).
pub const MAX_ATTEMPTS: u32 = 8;

/// What a notification says (its JSON body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyEvent {
    /// A unique id (the same on every attempt, so receivers can dedupe): `Kiln-Delivery`.
    pub id: String,
    /// One of `EVENTS`.
    pub event: String,
    pub project_id: String,
    pub generation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: i64,
}

/// One delivery of an event to one target, as queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyJob {
    pub target_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub event: NotifyEvent,
}

/// Seconds before attempt `next` (2, 3, …): 10 s, 20 s, 40 s … at most an hour.
pub fn backoff_secs(next: u32) -> u32 {
    let n = next.saturating_sub(2).min(16);
    (10u32 << n).min(3600)
}

/// The events to send, from a request (`None`: both).
pub fn parse_events(events: Option<&[String]>) -> Result<Vec<String>, String> {
    let Some(events) = events else {
        return Ok(EVENTS.iter().map(|e| e.to_string()).collect());
    };
    if events.is_empty() {
        return Err("name at least one event".into());
    }
    for e in events {
        if !EVENTS.contains(&e.as_str()) {
            return Err(format!(
                "unknown event {e:?} (known: {})",
                EVENTS.join(", ")
            ));
        }
    }
    Ok(events.to_vec())
}

/// Checks a destination URL: `https://` (or `http://`), no credentials in it, at most 2 KiB,
/// and unless `allow_private` (tests on loopback) a public host: no `localhost`, no `.local`
/// or `.internal` names, no loopback, private, link-local, shared or unspecified address.
pub fn check_destination(url: &str, allow_private: bool) -> Result<(), String> {
    if url.len() > 2048 {
        return Err("the URL is longer than 2 KiB".into());
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("the URL must start with https:// or http://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("the URL must not carry credentials".into());
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or("").to_owned(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .to_owned(),
    }
    .to_ascii_lowercase();
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    if allow_private {
        return Ok(());
    }
    let private = || Err(format!("{host} is not a public address"));
    if host == "localhost"
        || host.ends_with(".localhost")
        || host.ends_with(".local")
        || host.ends_with(".internal")
        || !host.contains(['.', ':'])
    {
        return private();
    }
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        let [a, b, ..] = ip.octets();
        if ip.is_loopback()
            || ip.is_private()
            || ip.is_link_local()
            || ip.is_unspecified()
            || ip.is_broadcast()
            || ip.is_multicast()
            || ip.is_documentation()
            || a == 0
            || (a == 100 && (64..128).contains(&b))
        {
            return private();
        }
    }
    if let Ok(ip) = host.parse::<std::net::Ipv6Addr>() {
        let first = ip.segments()[0];
        if ip.is_loopback()
            || ip.is_unspecified()
            || ip.is_multicast()
            || (first & 0xfe00) == 0xfc00
            || (first & 0xffc0) == 0xfe80
            || ip.to_ipv4_mapped().is_some()
        {
            return private();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_destinations_outside_tests() {
        for ok in [
            "https://hooks.example.com/kiln",
            "https://203.0.114.9/x",
            "http://ci.example.org:8443/notify?x=1",
            "https://[2001:4860::1]/n",
        ] {
            assert_eq!(check_destination(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "http://127.0.0.1:9000/",
            "https://localhost/",
            "https://app.localhost/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::2]/",
            "http://[::ffff:127.0.0.1]/",
            "http://printer.local/",
            "http://metadata.google.internal/",
            "http://intranet/",
        ] {
            assert!(check_destination(bad, false).is_err(), "{bad}");
        }
        assert!(check_destination("ftp://example.com/", false).is_err());
        assert!(check_destination("https://user:pw@example.com/", false).is_err());
        assert_eq!(check_destination("http://127.0.0.1:9000/", true), Ok(()));
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(backoff_secs(2), 10);
        assert_eq!(backoff_secs(3), 20);
        assert_eq!(backoff_secs(4), 40);
        assert_eq!(backoff_secs(9), 1280);
        assert_eq!(backoff_secs(12), 3600);
        assert_eq!(backoff_secs(99), 3600);
    }

    #[test]
    fn events_are_named_or_both() {
        assert_eq!(parse_events(None).unwrap(), EVENTS.to_vec());
        assert_eq!(
            parse_events(Some(&["generation.failed".into()])).unwrap(),
            ["generation.failed"]
        );
        assert!(parse_events(Some(&[])).is_err());
        assert!(parse_events(Some(&["generation.started".into()])).is_err());
    }
}
