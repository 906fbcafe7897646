//! Credentials in URLs (`https://user:password@host/...`, and a token used
//! as the user, `https://TOKEN@host/...`, as GitHub and GitLab hand them
//! out) must never be printed: every line halo prints (`crate::output`),
//! every JUnit file and every JSON document passes through here. The host
//! stays visible: it is what an operator needs to find the problem. PURE.

/// `text` with the credentials of every `scheme://userinfo@host` in it
/// replaced: `user:password@` becomes `user:***@`, a lone `token@`
/// (which cannot be told from a user name) becomes `***@`.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace or quote (or the
        // '<' of the XML element around it).
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || "\"'<>)".contains(c))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let host = &authority[at + 1..];
                match userinfo.split_once(':') {
                    Some((user, _)) => out.push_str(&format!("{user}:***@{host}")),
                    None if userinfo == "***" || userinfo.is_empty() => out.push_str(authority),
                    None => out.push_str(&format!("***@{host}")),
                }
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    redact_tokens(&out)
}

/// `halo serve`'s API tokens (`halo_` and 64 hex digits) become
/// `halo_***`: a token pasted into a URL, a header dump or an error reaches
/// no log.
pub fn redact_tokens(text: &str) -> String {
    const PREFIX: &str = "halo_";
    if !text.contains(PREFIX) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(PREFIX) {
        let after = &rest[i + PREFIX.len()..];
        let hex = after.bytes().take_while(u8::is_ascii_hexdigit).count();
        out.push_str(&rest[..i + PREFIX.len()]);
        if hex >= 64 {
            out.push_str("***");
            rest = &after[hex..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_show() {
        let t = format!("halo_{}", "ab12".repeat(16));
        assert_eq!(
            redact_urls(&format!("Authorization: Bearer {t} x")),
            "Authorization: Bearer halo_*** x"
        );
        assert_eq!(redact_urls("halo_serve halo_12"), "halo_serve halo_12");
    }

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
        assert_eq!(redact_urls("no url"), "no url");
        assert_eq!(redact_urls("/srv/git/r"), "/srv/git/r");
    }

    #[test]
    fn a_token_as_the_user_is_a_password() {
        assert_eq!(
            redact_urls("a http://x@h/ b https://p:q@h c"),
            "a http://***@h/ b https://p:***@h c"
        );
        assert_eq!(
            redact_urls("fetching https://ghp_0123456789abcdef@github.com:443/o/r.git failed"),
            "fetching https://***@github.com:443/o/r.git failed"
        );
        assert_eq!(
            redact_urls("<failure message=\"http://tok@h\">http://tok@h</failure>"),
            "<failure message=\"http://***@h\">http://***@h</failure>"
        );
    }

    #[test]
    fn redacting_twice_changes_nothing_more() {
        for text in ["http://u:pw@h/x", "http://tok@h/x", "x://@h", "http://h/@x"] {
            let once = redact_urls(text);
            assert_eq!(redact_urls(&once), once, "{text}");
            assert!(!once.contains("pw") && !once.contains("tok"), "{once}");
        }
    }
}
