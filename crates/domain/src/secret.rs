//! Secrets at rest and in comparison: the one SHA-256 digest every service keeps of a
//! generated secret or token instead of the value itself (RFC 6819 §5.1.4.1.3, §5.2.3.2),
//! and the constant-time comparison of such digests.
//!
//! SHA-256 rather than a password hash is deliberate: these secrets are random and
//! high-entropy, not chosen by people, so a slow hash would add cost without adding
//! safety. Passwords are hashed with argon2id elsewhere, never here.

/// The SHA-256 digest of `secret` (for comparison with [`constant_time_eq`]).
pub fn digest(secret: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref());
    out
}

/// The SHA-256 digest of `secret` as 64 lowercase hex digits: the form in which secrets,
/// codes, tokens and session ids are stored and looked up. Equal to
/// `digest_to_hex(&digest(secret))`.
pub fn digest_hex(secret: &str) -> String {
    digest_to_hex(&digest(secret))
}

/// A digest as 64 lowercase hex digits (the stored form of [`digest`]).
pub fn digest_to_hex(digest: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// The digest stored as [`digest_to_hex`] wrote it; `None` unless `hex` is exactly 64 hex
/// digits (either case).
pub fn digest_from_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |b: u8| {
            char::from(b)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
        };
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Compares two byte strings in time that depends only on their lengths, not on where they
/// differ (for secret digests).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn digest_is_sha256_as_lowercase_hex() {
        // FIPS 180-2 test vector for "abc".
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(digest_hex("abc"), abc);
        assert_eq!(digest_to_hex(&digest("abc")), abc);
        assert_eq!(digest_from_hex(abc), Some(digest("abc")));
        assert_eq!(digest_from_hex(&abc.to_uppercase()), Some(digest("abc")));
    }

    #[test]
    fn refuses_what_is_not_a_stored_digest() {
        let abc = digest_hex("abc");
        assert_eq!(digest_from_hex(&abc[1..]), None);
        assert_eq!(digest_from_hex(&format!("{abc}0")), None);
        assert_eq!(digest_from_hex(&format!("g{}", &abc[1..])), None);
        assert_eq!(digest_from_hex(&format!("+{}", &abc[1..])), None);
        assert_eq!(digest_from_hex(""), None);
    }
}
