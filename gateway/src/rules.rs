//! What a username and a password must be, and how passwords and tokens are hashed. Pure:
//! the caller supplies salts, tokens and time.
//!
//! Rules:
//! - `[acct-1]` a username is 3 to 24 characters of ASCII letters, digits, `_`, `-` and `.`,
//!   starting with a letter or digit; it is compared case-folded (lower case), so `Alice` and
//!   `alice` are the same account;
//! - `[acct-2]` a password is 10 to 128 bytes (a long passphrase is welcome; a megabyte is a
//!   denial-of-service attempt on the hasher);
//! - `[acct-3]` passwords are stored only as argon2id PHC strings with OWASP's parameters
//!   (19 MiB, 2 passes, 1 lane); a stored hash with other parameters still verifies;
//! - `[acct-4]` session tokens are 128 random bits, stored only as their SHA-256.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};

/// Shortest username.
pub const USERNAME_LEN_MIN: usize = 3;
/// Longest username.
pub const USERNAME_LEN_MAX: usize = 24;
/// Shortest password, in bytes.
pub const PASSWORD_LEN_MIN: usize = 10;
/// Longest password, in bytes.
pub const PASSWORD_LEN_MAX: usize = 128;
/// Argon2id memory cost, KiB (OWASP: 19 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes (OWASP: 2).
pub const ARGON2_PASSES: u32 = 2;
/// Argon2id lanes (OWASP: 1).
pub const ARGON2_LANES: u32 = 1;

/// Why a username or password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The username breaks `[acct-1]`.
    #[error(
        "usernames are {USERNAME_LEN_MIN} to {USERNAME_LEN_MAX} letters, digits, '_', '-' or '.', starting with a letter or digit"
    )]
    BadUsername,
    /// The password breaks `[acct-2]`.
    #[error("passwords are {PASSWORD_LEN_MIN} to {PASSWORD_LEN_MAX} bytes long")]
    BadPassword,
}

/// The case-folded form of a valid username (`[acct-1]`).
pub fn fold_username(raw: &str) -> Result<String, RuleError> {
    let ok_len = (USERNAME_LEN_MIN..=USERNAME_LEN_MAX).contains(&raw.len());
    let ok_chars = raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    let ok_start = raw.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok_len && ok_chars && ok_start { Ok(raw.to_ascii_lowercase()) } else { Err(RuleError::BadUsername) }
}

/// Checks a password's length (`[acct-2]`).
pub fn check_password(password: &str) -> Result<(), RuleError> {
    if (PASSWORD_LEN_MIN..=PASSWORD_LEN_MAX).contains(&password.len()) { Ok(()) } else { Err(RuleError::BadPassword) }
}

fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's limits.
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with a 16-byte salt (`[acct-3]`); the PHC string to store.
pub fn hash_password(password: &str, salt: [u8; 16]) -> Result<String, String> {
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `password` matches the stored PHC string (false for a malformed one).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// The stored form of a session token (`[acct-4]`).
pub fn token_hash(token: &[u8; 16]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// 16 random bytes from the operating system (salts and tokens).
pub fn random_16() -> Result<[u8; 16], getrandom::Error> {
    let mut out = [0u8; 16];
    getrandom::fill(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acct_1_usernames() {
        assert_eq!(fold_username("Alice_01").unwrap(), "alice_01");
        for bad in ["ab", "a".repeat(25).as_str(), "_alice", "al ice", "élodie", "bob!", ""] {
            assert_eq!(fold_username(bad), Err(RuleError::BadUsername), "{bad:?}");
        }
    }

    #[test]
    fn acct_2_passwords() {
        assert!(check_password("correct horse").is_ok());
        assert!(check_password("short").is_err());
        assert!(check_password(&"x".repeat(129)).is_err());
    }

    #[test]
    fn acct_3_4_hashes_verify_and_differ_by_salt() {
        let a = hash_password("correct horse battery", [1; 16]).unwrap();
        let b = hash_password("correct horse battery", [2; 16]).unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterY", &a));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert_ne!(token_hash(&[1; 16]), token_hash(&[2; 16]));
        assert_ne!(random_16().unwrap(), random_16().unwrap());
    }
}
