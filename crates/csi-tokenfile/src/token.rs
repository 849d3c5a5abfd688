//! Turning the raw bytes of the token file into a usable token: text checks and the JWT `exp` check.

use std::path::Path;

use base64::{
    Engine,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use zeroize::Zeroize;

use crate::{Error, Result};

/// The UTF-8 byte order mark some editors put in front of text files.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// base64url that accepts the payload with or without `=` padding.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Checks the bytes read from `path` and returns the token they hold. The buffer is zeroized before
/// this function returns, whatever the outcome.
///
/// Accepted: UTF-8 text, optionally behind a byte order mark, whose content after trimming surrounding
/// whitespace (spaces, tabs, `\r`, `\n`) is non-empty visible ASCII. A JWT (three dot-separated parts
/// whose middle part is base64url JSON) must not carry an `exp` claim at or before `now`; any other
/// token is accepted as opaque (the emulator's tokens are).
pub(crate) fn parse_token(path: &Path, mut raw: Vec<u8>, now: Timestamp) -> Result<SecretString> {
    let result = parse_inner(path, &raw, now);
    raw.zeroize();
    result
}

fn parse_inner(path: &Path, raw: &[u8], now: Timestamp) -> Result<SecretString> {
    let body = raw.strip_prefix(BOM).unwrap_or(raw);
    let text = std::str::from_utf8(body).map_err(|_| Error::NotUtf8 {
        path: path.to_owned(),
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::Empty {
            path: path.to_owned(),
        });
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Malformed {
            path: path.to_owned(),
        });
    }
    let token = SecretString::from(token.to_owned());
    if let Some(exp) = jwt_expiry(token.expose_secret())
        && exp <= now
    {
        let ago_secs = now.as_second().saturating_sub(exp.as_second());
        return Err(Error::Expired {
            path: path.to_owned(),
            expired_at: exp,
            ago_secs,
        });
    }
    Ok(token)
}

/// The claims this crate reads; every other claim is skipped while parsing.
#[derive(Deserialize)]
struct Claims {
    exp: Option<serde_json::Number>,
}

/// The `exp` claim of a JWT, read without verifying the signature; `None` for anything that is not a
/// decodable JWT or has no usable `exp`.
pub(crate) fn jwt_expiry(token: &str) -> Option<Timestamp> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.is_empty() {
        return None;
    }
    let mut decoded = BASE64URL.decode(payload).ok()?;
    let claims = serde_json::from_slice::<Claims>(&decoded);
    decoded.zeroize();
    let exp = claims.ok()?.exp?;
    let seconds = exp
        .as_i64()
        .or_else(|| exp.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64))?;
    // A claim beyond the representable range is still a time: far past (expired) or far future.
    let seconds = seconds.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Timestamp::from_second(seconds).ok()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn path() -> PathBuf {
        PathBuf::from("/secret/access_token")
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    pub(crate) fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims),
            URL_SAFE_NO_PAD.encode("not-a-real-signature")
        )
    }

    fn parse(bytes: &[u8]) -> Result<String> {
        parse_token(&path(), bytes.to_vec(), now()).map(|t| t.expose_secret().to_owned())
    }

    #[test]
    fn trims_newlines_crlf_and_a_byte_order_mark() {
        assert_eq!(parse(b"tok-123\n").unwrap(), "tok-123");
        assert_eq!(parse(b"  tok-123\r\n").unwrap(), "tok-123");
        assert_eq!(parse(b"\xEF\xBB\xBFtok-123\r\n").unwrap(), "tok-123");
        assert_eq!(parse(b"\ttok-123\t").unwrap(), "tok-123");
    }

    #[test]
    fn empty_and_whitespace_only_content_is_empty() {
        for bytes in [&b""[..], b"\n", b"  \r\n\t ", b"\xEF\xBB\xBF\n"] {
            let e = parse(bytes).unwrap_err();
            assert_eq!(e, Error::Empty { path: path() }, "{bytes:?}");
            assert_eq!(e.to_string(), "token file /secret/access_token is empty");
        }
    }

    #[test]
    fn non_utf8_content_is_rejected_without_echoing_it() {
        let e = parse(b"tok\xFF\xFEhunter9").unwrap_err();
        assert_eq!(e, Error::NotUtf8 { path: path() });
        assert!(!e.to_string().contains("hunter9"), "{e}");
    }

    #[test]
    fn inner_whitespace_control_and_non_ascii_characters_are_malformed() {
        for bytes in [&b"Zq9-a\nZq9-b"[..], b"Zq9 a", b"Zq9\x07", "Zq9\u{f6}".as_bytes()] {
            let e = parse(bytes).unwrap_err();
            assert_eq!(e, Error::Malformed { path: path() }, "{bytes:?}");
            assert!(!e.to_string().contains("Zq9"), "{e}");
        }
    }

    #[test]
    fn an_expired_jwt_is_rejected_naming_the_expiry() {
        let token = jwt(r#"{"sub":"u1","exp":1799999000}"#);
        let e = parse(token.as_bytes()).unwrap_err();
        let expired_at = Timestamp::from_second(1_799_999_000).unwrap();
        assert_eq!(
            e,
            Error::Expired {
                path: path(),
                expired_at,
                ago_secs: 1000
            }
        );
        let text = e.to_string();
        assert!(
            text.contains("expired at 2027-01-15T07:43:20Z") && text.contains("1000 s ago"),
            "{text}"
        );
        assert!(!text.contains(&token), "{text}");
        // Exactly now counts as expired.
        assert!(matches!(
            parse(jwt(r#"{"exp":1800000000}"#).as_bytes()),
            Err(Error::Expired { .. })
        ));
    }

    #[test]
    fn a_valid_jwt_and_opaque_tokens_are_accepted() {
        let token = jwt(r#"{"sub":"u1","exp":1800000600,"realm_access":{"roles":["a"]}}"#);
        assert_eq!(parse(format!("{token}\n").as_bytes()).unwrap(), token);
        // No exp claim, fractional exp, an undecodable payload and a plain opaque token: accepted.
        for token in [
            jwt(r#"{"sub":"u1"}"#),
            jwt(r#"{"exp":1800000600.5}"#),
            "aaa.%%%.ccc".to_owned(),
            "9f86d081884c7d659a2feaa0c55ad015".to_owned(),
            "a.b".to_owned(),
        ] {
            assert_eq!(parse(token.as_bytes()).unwrap(), token);
        }
    }

    #[test]
    fn jwt_expiry_reads_padded_and_unpadded_payloads() {
        assert_eq!(
            jwt_expiry(&jwt(r#"{"exp":1700000000}"#)),
            Some(Timestamp::from_second(1_700_000_000).unwrap())
        );
        let padded = format!(
            "h.{}.s",
            base64::engine::general_purpose::URL_SAFE.encode(r#"{"exp":1}"#)
        );
        assert_eq!(jwt_expiry(&padded), Some(Timestamp::from_second(1).unwrap()));
        assert_eq!(jwt_expiry("h.p.s.x"), None);
        assert_eq!(jwt_expiry(&jwt(r#"{"exp":"soon"}"#)), None);
        assert_eq!(jwt_expiry(&jwt("[1,2]")), None);
        // Beyond the timestamp range: still far past or far future, never "no expiry".
        assert_eq!(jwt_expiry(&jwt(r#"{"exp":-1e300}"#)), Some(Timestamp::MIN));
        assert_eq!(
            jwt_expiry(&jwt(r#"{"exp":-9223372036854775808}"#)),
            Some(Timestamp::MIN)
        );
        assert_eq!(
            jwt_expiry(&jwt(r#"{"exp":1e300}"#)).map(|t| t.as_second()),
            Some(Timestamp::MAX.as_second())
        );
    }
}
