//! HTTP Basic client credentials, RFC 6749 §2.3.1: the one encoder and the one parser of
//! `Authorization: Basic …` for OAuth clients, used on HTTP and in gRPC metadata alike.
//!
//! RFC 6749 §2.3.1 asks that the client id and secret each be encoded with the
//! `application/x-www-form-urlencoded` algorithm (Appendix B) before they are joined with
//! `:` and base64-encoded as RFC 7617 describes. So a secret may contain `:`, `&`, `=`,
//! `+`, `%` or any non-ASCII character and still travel unambiguously.
//!
//! The base64 is the standard alphabet with padding required (RFC 4648 §4, as RFC 7617
//! §2 specifies); unpadded or URL-safe input is refused, as it always was here.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Why an `Authorization` value is not valid Basic client credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BasicError {
    /// The value does not use the `Basic` scheme (RFC 7235 §2.1: compared
    /// case-insensitively) followed by a space.
    #[error("not Basic credentials")]
    NotBasic,
    /// The credentials are not standard, padded base64.
    #[error("credentials are not base64")]
    Base64,
    /// The decoded credentials contain no `:` between id and secret.
    #[error("credentials contain no ':'")]
    MissingColon,
    /// The client id is empty.
    #[error("client id is empty")]
    EmptyId,
    /// A `%` is not followed by two hexadecimal digits.
    #[error("bad percent-escape in credentials")]
    BadEscape,
    /// The credentials, or the id or secret after form-urlencoding decoding, are not UTF-8.
    #[error("credentials are not UTF-8")]
    NotUtf8,
}

/// The `Authorization` header value for `id` and `secret` (RFC 6749 §2.3.1): `Basic `
/// followed by the standard, padded base64 of `urlencode(id) ":" urlencode(secret)`, where
/// `urlencode` is the `application/x-www-form-urlencoded` byte serialiser (HTML URL
/// standard): ASCII alphanumerics and `*-._` stay, space becomes `+`, every other byte
/// becomes `%XX`. [`parse`] inverts it exactly.
pub fn encode(id: &str, secret: &str) -> String {
    let mut pair = form_urlencode(id);
    pair.push(':');
    pair.push_str(&form_urlencode(secret));
    format!("Basic {}", STANDARD.encode(pair))
}

/// `(client_id, client_secret)` from an `Authorization` header value (RFC 6749 §2.3.1).
///
/// The scheme `Basic` is matched case-insensitively and must be followed by at least one
/// space; surrounding whitespace around the credentials is ignored. The credentials are
/// decoded exactly: base64 (standard alphabet, padding required), split at the FIRST `:`,
/// then each part form-urlencoding-decoded completely (`%XX` escapes, `+` as space). An
/// `&` or `=` is an ordinary character of the secret, never a separator.
///
/// # Errors
///
/// [`BasicError`]: another scheme, bad base64, no `:`, an empty id, a `%` not followed by
/// two hex digits, or bytes that are not UTF-8 after decoding.
pub fn parse(header_value: &str) -> Result<(String, String), BasicError> {
    let credentials = header_value
        .get(..6)
        .filter(|scheme| scheme.eq_ignore_ascii_case("basic "))
        .and_then(|_| header_value.get(6..))
        .ok_or(BasicError::NotBasic)?
        .trim();
    let raw = STANDARD
        .decode(credentials)
        .map_err(|_| BasicError::Base64)?;
    let colon = raw
        .iter()
        .position(|b| *b == b':')
        .ok_or(BasicError::MissingColon)?;
    let id = form_urldecode(&raw[..colon])?;
    let secret = form_urldecode(&raw[colon + 1..])?;
    if id.is_empty() {
        return Err(BasicError::EmptyId);
    }
    Ok((id, secret))
}

/// The `application/x-www-form-urlencoded` byte serialiser (HTML URL standard §5.2).
fn form_urlencode(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
    out
}

/// Decodes one whole form-urlencoded value: `+` is a space, `%XX` one byte; everything
/// else (including `&` and `=`) is itself. A `%` without two hex digits is an error.
fn form_urldecode(value: &[u8]) -> Result<String, BasicError> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = value.get(i + 1).and_then(|h| hex_digit(*h));
                let lo = value.get(i + 2).and_then(|l| hex_digit(*l));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(BasicError::BadEscape);
                };
                out.push(hi << 4 | lo);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| BasicError::NotUtf8)
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn basic(pair: &[u8]) -> String {
        format!("Basic {}", STANDARD.encode(pair))
    }

    #[test]
    fn rfc_6749_2_3_1_example() {
        // The example of RFC 6749 §2.3.1 (client id `s6BhdRkqt3`, secret `7Fjfp0ZBr1KtDRbnfVdmIw`),
        // as the RFC prints the header.
        let header = "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3";
        assert_eq!(encode("s6BhdRkqt3", "7Fjfp0ZBr1KtDRbnfVdmIw"), header);
        assert_eq!(
            parse(header),
            Ok(("s6BhdRkqt3".into(), "7Fjfp0ZBr1KtDRbnfVdmIw".into()))
        );
    }

    #[test]
    fn reserved_characters_are_form_urlencoded() {
        assert_eq!(
            encode("cli:ent", "s+ec ret%&=ü"),
            basic(b"cli%3Aent:s%2Bec+ret%25%26%3D%C3%BC")
        );
        assert_eq!(
            parse(&basic(b"cli%3Aent:s%2Bec+ret%25")),
            Ok(("cli:ent".into(), "s+ec ret%".into()))
        );
    }

    #[test]
    fn an_ampersand_is_part_of_the_secret() {
        // `url::form_urlencoded::parse` split here and dropped `&junk=1`.
        assert_eq!(
            parse(&basic(b"demo-client:demo-secret&junk=1")),
            Ok(("demo-client".into(), "demo-secret&junk=1".into()))
        );
    }

    #[test]
    fn splits_at_the_first_colon() {
        assert_eq!(
            parse(&basic(b"id:sec:ret")),
            Ok(("id".into(), "sec:ret".into()))
        );
        assert_eq!(parse(&basic(b"id:")), Ok(("id".into(), String::new())));
    }

    #[test]
    fn scheme_is_case_insensitive_and_whitespace_tolerated() {
        let value = STANDARD.encode("a:b");
        for header in [
            format!("basic {value}"),
            format!("BASIC {value}"),
            format!("Basic   {value}  "),
        ] {
            assert_eq!(parse(&header), Ok(("a".into(), "b".into())), "{header}");
        }
    }

    #[test]
    fn refuses_what_is_not_valid_credentials() {
        assert_eq!(
            parse(&format!("Bearer {}", STANDARD.encode("a:b"))),
            Err(BasicError::NotBasic)
        );
        assert_eq!(parse("Basic"), Err(BasicError::NotBasic));
        assert_eq!(parse(""), Err(BasicError::NotBasic));
        assert_eq!(parse("Basic %%%"), Err(BasicError::Base64));
        // Padding is required (RFC 7617 §2, RFC 4648 §4).
        assert_eq!(parse("Basic YTpiYw"), Err(BasicError::Base64));
        assert_eq!(parse("Basic YTpiYw=="), Ok(("a".into(), "bc".into())));
        assert_eq!(parse(&basic(b"no-colon")), Err(BasicError::MissingColon));
        assert_eq!(parse(&basic(b":secret")), Err(BasicError::EmptyId));
        assert_eq!(parse(&basic(b"%3:x")), Err(BasicError::BadEscape));
        assert_eq!(parse(&basic(b"id:%zz")), Err(BasicError::BadEscape));
        assert_eq!(parse(&basic(b"id:50%")), Err(BasicError::BadEscape));
        assert_eq!(parse(&basic(b"id:%FF")), Err(BasicError::NotUtf8));
        assert_eq!(parse(&basic(b"id:\xff")), Err(BasicError::NotUtf8));
    }

    proptest! {
        #[test]
        fn parse_inverts_encode(
            id in "[^:]{1,24}",
            secret in "(.|[:&=+% ])*",
        ) {
            prop_assert_eq!(parse(&encode(&id, &secret)), Ok((id, secret)));
        }

        #[test]
        fn ids_may_hold_any_character_too(id in ".{1,24}", secret in ".*") {
            prop_assert_eq!(parse(&encode(&id, &secret)), Ok((id, secret)));
        }

        #[test]
        fn parse_never_panics(input in ".*") {
            let _ = parse(&input);
            let _ = parse(&format!("Basic {input}"));
        }
    }
}
