//! Hex encoding and strict decoding of 32-byte digests.
//!
//! Only what signature headers need: a digest is exactly 64 hex digits, either case.
//! Decoding a signature is not constant time; it does not need to be, because the
//! input is what the sender wrote, not a secret. The comparison against the expected
//! MAC is (see [`crate::secret`]).

/// Length in bytes of an HMAC-SHA256 tag.
pub(crate) const DIGEST_LEN: usize = 32;

/// Decodes exactly 64 hex digits (upper- or lower-case) into 32 bytes.
///
/// Returns `None` for any other length or any non-hex character; never panics.
pub(crate) fn decode_digest(text: &str) -> Option<[u8; DIGEST_LEN]> {
    let text = text.as_bytes();
    if text.len() != DIGEST_LEN * 2 {
        return None;
    }
    let mut out = [0u8; DIGEST_LEN];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Encodes bytes as lower-case hex.
pub(crate) fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_cases() {
        let bytes: Vec<u8> = (0..32).map(|i| i * 7).collect();
        let lower = encode(&bytes);
        assert_eq!(
            decode_digest(&lower).map(|d| d.to_vec()),
            Some(bytes.clone())
        );
        let upper = lower.to_ascii_uppercase();
        assert_eq!(decode_digest(&upper).map(|d| d.to_vec()), Some(bytes));
    }

    #[test]
    fn rejects_wrong_length_and_non_hex() {
        assert_eq!(decode_digest(""), None);
        assert_eq!(decode_digest(&"a".repeat(63)), None);
        assert_eq!(decode_digest(&"a".repeat(65)), None);
        assert_eq!(decode_digest(&"g".repeat(64)), None);
        // A multi-byte character whose UTF-8 length makes the byte count 64.
        assert_eq!(decode_digest(&format!("{}é", "a".repeat(62))), None);
    }
}
