//! User codes of the Device Authorization Grant (RFC 8628 §6.1).
//!
//! A user code is 8 characters of the 20 consonants `BCDFGHJKLMNPQRSTVWXZ` (no vowels, so
//! no words are spelt by accident; no `0`/`O`, `1`/`I` to confuse), shown as `XXXX-XXXX`:
//! 20^8 ≈ 2^34.5 codes, which together with the verification page's rate limit and the
//! codes' short lifetime keeps guessing hopeless (RFC 8628 §5.1). Typed input is read
//! case-insensitively, with hyphens and whitespace ignored.

use std::fmt;

/// The alphabet of user codes (RFC 8628 §6.1's "base-20" example).
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Characters of a user code, without the separator.
pub const USER_CODE_LEN: usize = 8;

/// A user code in canonical form: [`USER_CODE_LEN`] upper-case characters of
/// [`USER_CODE_ALPHABET`].
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl UserCode {
    /// Draws a user code from `random` bytes, uniformly: a byte is used only when it is
    /// below the largest multiple of 20 that fits in a byte (240), so no character is more
    /// likely than another. `None` when the bytes ran out before 8 characters were drawn
    /// (give at least 16; 32 practically never run out).
    pub fn from_random(random: &[u8]) -> Option<Self> {
        let n = USER_CODE_ALPHABET.len();
        let limit = u8::try_from(256 / n * n).unwrap_or(u8::MAX);
        let code: String = random
            .iter()
            .filter(|b| **b < limit)
            .map(|b| char::from(USER_CODE_ALPHABET[usize::from(*b) % n]))
            .take(USER_CODE_LEN)
            .collect();
        (code.len() == USER_CODE_LEN).then_some(Self(code))
    }

    /// Reads what a user typed: case-insensitive, hyphens and whitespace ignored. `None`
    /// when what is left is not a well-formed code (wrong length or a character outside
    /// the alphabet), so a typo is refused without a look-up.
    pub fn parse(typed: &str) -> Option<Self> {
        let code: String = typed
            .chars()
            .filter(|c| *c != '-' && !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let valid =
            code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
        valid.then_some(Self(code))
    }

    /// The canonical form (8 characters, no separator): what is hashed and stored.
    pub fn canonical(&self) -> &str {
        &self.0
    }

    /// The form shown to users: `XXXX-XXXX`.
    pub fn display(&self) -> String {
        let (a, b) = self.0.split_at(USER_CODE_LEN / 2);
        format!("{a}-{b}")
    }
}

impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserCode([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_codes_use_the_alphabet_only() {
        let bytes: Vec<u8> = (0..=255).collect();
        let code = UserCode::from_random(&bytes).unwrap();
        assert_eq!(code.canonical().len(), 8);
        assert!(
            code.canonical()
                .bytes()
                .all(|b| USER_CODE_ALPHABET.contains(&b))
        );
        assert!(
            UserCode::from_random(&[250; 32]).is_none(),
            "bytes >= 240 are skipped"
        );
        for bad in [b'0', b'O', b'1', b'I', b'A', b'E', b'U'] {
            assert!(!USER_CODE_ALPHABET.contains(&bad));
        }
    }

    #[test]
    fn typed_codes_ignore_case_hyphens_and_spaces() {
        let code = UserCode::parse("bcdf-ghjk").unwrap();
        assert_eq!(code.canonical(), "BCDFGHJK");
        assert_eq!(code.display(), "BCDF-GHJK");
        assert_eq!(UserCode::parse(" BCDF GHJK ").unwrap(), code);
        assert_eq!(UserCode::parse("B-C-D-F-G-H-J-K").unwrap(), code);
        assert!(UserCode::parse("BCDF-GHJ").is_none());
        assert!(UserCode::parse("BCDF-GHJKL").is_none());
        assert!(UserCode::parse("BCDF-GHJ0").is_none());
        assert!(UserCode::parse("AEIO-UBCD").is_none());
        assert!(UserCode::parse("").is_none());
        assert_eq!(format!("{code:?}"), "UserCode([redacted])");
    }
}
