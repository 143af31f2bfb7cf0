//! `block-disposable-email`: a synchronous hook that denies registration with
//! a disposable email address.
//!
//! It reads the address from `email`, `user.primaryEmail` or `primaryEmail`
//! in the payload. Config `domains` adds comma-separated domains to the
//! built-in list; `message` replaces the message shown to the user. Bound to
//! an asynchronous hook, it cancels the delivery instead.

use wasmhooks_sdk::{config, export_hook, paths, Error, Event, Hook, Outcome, Value};

/// Well-known throwaway mail providers.
pub const DISPOSABLE_DOMAINS: &[&str] = &[
    "10minutemail.com",
    "discard.email",
    "dispostable.com",
    "fakeinbox.com",
    "getnada.com",
    "guerrillamail.com",
    "guerrillamail.net",
    "maildrop.cc",
    "mailinator.com",
    "mailnesia.com",
    "mintemail.com",
    "mohmal.com",
    "sharklasers.com",
    "temp-mail.org",
    "tempmail.com",
    "tempmailo.com",
    "throwawaymail.com",
    "trashmail.com",
    "yopmail.com",
];

/// The domain of `email` in lower case, if it has one.
fn domain(email: &str) -> Option<String> {
    email
        .rsplit_once('@')
        .map(|(_, d)| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

/// True when `domain` or any parent domain of it is disposable.
fn is_disposable(domain: &str, extra: &[String]) -> bool {
    let listed = |d: &str| DISPOSABLE_DOMAINS.contains(&d) || extra.iter().any(|e| e == d);
    let mut rest = domain;
    loop {
        if listed(rest) {
            return true;
        }
        match rest.split_once('.') {
            Some((_, parent)) if parent.contains('.') => rest = parent,
            _ => return false,
        }
    }
}

struct BlockDisposableEmail;

impl Hook for BlockDisposableEmail {
    fn handle(event: Event) -> Result<Outcome, Error> {
        let email = ["email", "user.primaryEmail", "primaryEmail"]
            .iter()
            .find_map(|p| paths::get(&event.payload, p).and_then(Value::as_str));
        let extra: Vec<String> = config::list("domains")
            .into_iter()
            .map(|d| d.to_ascii_lowercase())
            .collect();
        let disposable = email
            .and_then(domain)
            .is_some_and(|d| is_disposable(&d, &extra));
        Ok(match (disposable, event.is_sync()) {
            (false, true) => Outcome::allow(),
            (false, false) => Outcome::unchanged(),
            (true, true) => Outcome::deny(
                "disposable_email",
                config::get("message")
                    .unwrap_or_else(|| "Please sign up with a permanent email address.".into()),
            ),
            (true, false) => Outcome::cancel("disposable email address"),
        })
    }
}

export_hook!(BlockDisposableEmail);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_disposable_domains_and_their_subdomains() {
        assert_eq!(
            domain("Ada@Mailinator.COM").as_deref(),
            Some("mailinator.com")
        );
        assert_eq!(domain("no-at-sign"), None);
        assert!(is_disposable("mailinator.com", &[]));
        assert!(is_disposable("eu.yopmail.com", &[]));
        assert!(!is_disposable("example.com", &[]));
        assert!(!is_disposable("com", &[]));
        assert!(is_disposable(
            "x.throwaway.test",
            &["throwaway.test".into()]
        ));
    }
}
