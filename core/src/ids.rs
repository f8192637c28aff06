//! Typed identifiers. Ids are a one-letter kind prefix and 32 lowercase hex digits (128 random
//! bits); anything else from the outside is not an id and is treated as "not found".

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($name:ident, $prefix:literal, $what:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// Builds an id from 16 random bytes supplied by the caller (core has no RNG).
            pub fn from_random(bytes: [u8; 16]) -> Self {
                $name(format!("{}{}", $prefix, hex(&bytes)))
            }

            pub fn parse(s: &str) -> Option<Self> {
                let rest = s.strip_prefix($prefix)?;
                let ok = rest.len() == 32
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                ok.then(|| $name(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                $name::parse(&s).ok_or_else(|| format!("not a valid {} id", $what))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

id_type!(UserId, "u_", "user");
id_type!(OrgId, "o_", "org");
id_type!(ProjectId, "p_", "project");
id_type!(SessionId, "s_", "session");

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_round_trip_through_parse() {
        let id = ProjectId::from_random([0xab; 16]);
        assert_eq!(id.as_str(), format!("p_{}", "ab".repeat(16)));
        assert_eq!(ProjectId::parse(id.as_str()), Some(id));
    }

    #[test]
    fn malformed_ids_are_rejected() {
        let good = "0123456789abcdef0123456789abcdef";
        for bad in [
            String::new(),
            good.to_owned(),
            format!("u_{good}"),
            format!("p_{}", &good[1..]),
            format!("p_{good}0"),
            format!("p_{}", good.to_uppercase()),
            format!("p_{}' OR 1=1 --", &good[..20]),
            "p_../../etc/passwd".to_owned(),
        ] {
            assert_eq!(ProjectId::parse(&bad), None, "{bad:?}");
        }
        assert!(ProjectId::parse(&format!("p_{good}")).is_some());
    }

    #[test]
    fn ids_deserialize_only_when_valid() {
        assert!(serde_json::from_str::<OrgId>("\"o_0123456789abcdef0123456789abcdef\"").is_ok());
        assert!(serde_json::from_str::<OrgId>("\"o_nope\"").is_err());
    }
}
