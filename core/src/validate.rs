//! Validation of user-supplied values at the edge. Each function returns the normalised value
//! or a message that names the problem; callers attach the field name.

pub const PASSWORD_MIN_CHARS: usize = 10;
/// PBKDF2 hashes the whole password on every iteration: bound it so a login cannot be made
/// expensive on purpose.
pub const PASSWORD_MAX_BYTES: usize = 1024;
pub const EMAIL_MAX_BYTES: usize = 254;
pub const NAME_MAX_CHARS: usize = 100;
pub const DESCRIPTION_MAX_CHARS: usize = 2000;

/// A normalised email address: trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("email is required".into());
        }
        if email.len() > EMAIL_MAX_BYTES {
            return Err(format!("email is longer than {EMAIL_MAX_BYTES} bytes"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("email must contain @".into());
        };
        let bad_char = |c: char| c.is_whitespace() || c.is_control() || c == '@';
        if local.is_empty()
            || domain.is_empty()
            || local.chars().any(bad_char)
            || domain.chars().any(bad_char)
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err("email is not a valid address".into());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn password(raw: &str) -> Result<&str, String> {
    if raw.chars().count() < PASSWORD_MIN_CHARS {
        return Err(format!(
            "password must be at least {PASSWORD_MIN_CHARS} characters"
        ));
    }
    if raw.len() > PASSWORD_MAX_BYTES {
        return Err(format!(
            "password must be at most {PASSWORD_MAX_BYTES} bytes"
        ));
    }
    Ok(raw)
}

/// A display name (org, project): trimmed, 1..=100 characters, no control characters.
/// Anything else is stored verbatim: names are data, never code.
pub fn name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(format!("must be at most {NAME_MAX_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_owned())
}

/// A free-text description: up to 2,000 characters; newlines and tabs allowed.
pub fn description(raw: &str) -> Result<String, String> {
    if raw.chars().count() > DESCRIPTION_MAX_CHARS {
        return Err(format!(
            "must be at most {DESCRIPTION_MAX_CHARS} characters"
        ));
    }
    if raw
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err("must not contain control characters".into());
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Ada@Example.COM \n").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn bad_emails_are_rejected() {
        for bad in [
            "",
            "   ",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "ada@@example.com",
            "a da@example.com",
            "ada@.com",
            "ada@example.",
            "ada@exa\u{0}mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn passwords_need_ten_characters_not_bytes() {
        assert!(password("123456789").is_err());
        assert!(password("1234567890").is_ok());
        // Ten characters, more than ten bytes.
        assert!(password("ééééééééé").is_err());
        assert!(password("éééééééééé").is_ok());
        assert!(password(&"x".repeat(PASSWORD_MAX_BYTES + 1)).is_err());
    }

    #[test]
    fn names_are_trimmed_and_stored_verbatim() {
        assert_eq!(name("  My app ").unwrap(), "My app");
        let sqlish = "Robert'); DROP TABLE projects;--";
        assert_eq!(name(sqlish).unwrap(), sqlish);
        assert!(name("").is_err());
        assert!(name("   ").is_err());
        assert!(name("a\u{7}b").is_err());
        assert!(name(&"n".repeat(NAME_MAX_CHARS)).is_ok());
        assert!(name(&"n".repeat(NAME_MAX_CHARS + 1)).is_err());
    }

    #[test]
    fn descriptions_allow_newlines_but_not_other_controls() {
        assert!(description("line one\nline two\tend").is_ok());
        assert!(description("bell\u{7}").is_err());
        assert!(description(&"d".repeat(DESCRIPTION_MAX_CHARS + 1)).is_err());
    }
}
