//! Signed client identities (`client_key` of an app): the app's backend signs a clientId, the
//! client shows the signature when it enters, and nobody without it can take that clientId
//! (and, with `duplicate = "replace"`, kick its owner off).
//!
//! A token is `{expiry}.{signature}`: `expiry` in Unix seconds, `signature` the HMAC-SHA256
//! (ring) under the app's client key of `{apikey}\n{clientId}\n{expiry}`, base64url without
//! padding. Sans-IO: the time is passed in; the comparison is ring's, in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

/// An app's key for client tokens.
#[derive(Clone)]
pub struct ClientKey(hmac::Key);

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientKey(<redacted>)")
    }
}

/// Why a token does not let a client in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("this app requires a signed clientId: pass its token")]
    Missing,
    #[error("the token is not {{expiry}}.{{signature}}")]
    Malformed,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not this clientId's")]
    Forged,
}

fn message(apikey: &str, client_id: &str, expiry: u64) -> String {
    format!("{apikey}\n{client_id}\n{expiry}")
}

impl ClientKey {
    pub fn new(key: &[u8]) -> ClientKey {
        ClientKey(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    /// The token of `client_id` of `apikey`, valid until `expiry` (Unix seconds).
    pub fn sign(&self, apikey: &str, client_id: &str, expiry: u64) -> String {
        let tag = hmac::sign(&self.0, message(apikey, client_id, expiry).as_bytes());
        format!("{expiry}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Whether `token` lets `client_id` of `apikey` in at `unix_now`.
    pub fn verify(
        &self,
        apikey: &str,
        client_id: &str,
        token: Option<&str>,
        unix_now: u64,
    ) -> Result<(), TokenError> {
        let token = token.ok_or(TokenError::Missing)?;
        let (expiry, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let expiry: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.0, message(apikey, client_id, expiry).as_bytes(), &signature)
            .map_err(|_| TokenError::Forged)?;
        if unix_now >= expiry {
            return Err(TokenError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_token_lets_its_client_in_until_it_expires() {
        let key = ClientKey::new(b"the app's client key, 32 bytes..");
        let token = key.sign("demo", "phone-1", NOW + 60);
        assert!(token.starts_with("1800000060."), "{token}");
        assert_eq!(key.verify("demo", "phone-1", Some(&token), NOW), Ok(()));
        assert_eq!(key.verify("demo", "phone-1", Some(&token), NOW + 60), Err(TokenError::Expired));
    }

    #[test]
    fn the_token_is_what_the_readmes_openssl_recipe_makes() {
        // printf 'demo\nphone-1\n%s' 1900000000 | openssl dgst -sha256 \
        //   -hmac the-demo-apps-client-key-0123456789 -binary | basenc --base64url | tr -d '='
        let key = ClientKey::new(b"the-demo-apps-client-key-0123456789");
        let token = key.sign("demo", "phone-1", 1_900_000_000);
        assert_eq!(token, "1900000000.0y6IQDQzE-JSibqxCT2zSj4HKSPbNsGgqiIpsaZSLpQ");
    }

    #[test]
    fn another_clientid_app_key_or_expiry_is_forged() {
        let key = ClientKey::new(b"k1 k1 k1 k1 k1 k1");
        let token = key.sign("demo", "phone-1", NOW + 60);
        assert_eq!(key.verify("demo", "phone-2", Some(&token), NOW), Err(TokenError::Forged));
        assert_eq!(key.verify("other", "phone-1", Some(&token), NOW), Err(TokenError::Forged));
        let other_key = ClientKey::new(b"k2 k2 k2 k2 k2 k2");
        assert_eq!(other_key.verify("demo", "phone-1", Some(&token), NOW), Err(TokenError::Forged));
        let (_, signature) = token.split_once('.').unwrap();
        let later = format!("{}.{signature}", NOW + 3600);
        assert_eq!(key.verify("demo", "phone-1", Some(&later), NOW), Err(TokenError::Forged));
    }

    #[test]
    fn what_is_not_a_token_says_so() {
        let key = ClientKey::new(b"k1 k1 k1 k1 k1 k1");
        for bad in ["", "nodot", "x.abc", "1.%%%", "-1.AAAA"] {
            let got = key.verify("demo", "a", Some(bad), NOW);
            assert!(
                matches!(got, Err(TokenError::Malformed | TokenError::Forged)),
                "{bad}: {got:?}"
            );
        }
        assert_eq!(key.verify("demo", "a", None, NOW), Err(TokenError::Missing));
    }
}
