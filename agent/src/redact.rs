//! Passwords in URLs (`https://user:password@host/...`, a mirror or git
//! URL with credentials) must never be printed: every error line and every
//! warning that can carry a URL goes through here. PURE.

/// `text` with the password of every `scheme://user:password@host` in it
/// replaced by `***`.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace or quote.
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || "\"')>".contains(c))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let user = authority[..at].split(':').next().unwrap_or("");
                if authority[..at].contains(':') {
                    out.push_str(&format!("{user}:***@{}", &authority[at + 1..]));
                } else {
                    out.push_str(authority);
                }
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_urls(
                "error sending request for url (http://u:s3cret@h:8080/dists/x/InRelease): refused"
            ),
            "error sending request for url (http://u:***@h:8080/dists/x/InRelease): refused"
        );
        assert_eq!(
            redact_urls("https://git.example.org/r.git"),
            "https://git.example.org/r.git"
        );
        assert_eq!(
            redact_urls("a http://x@h/ b https://p:q@h c"),
            "a http://x@h/ b https://p:***@h c"
        );
        assert_eq!(redact_urls("no url"), "no url");
        assert_eq!(redact_urls("/srv/git/r"), "/srv/git/r");
    }
}
