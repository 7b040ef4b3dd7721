//! [`BasicAuth`]: the credentials `/system/*` asks for, read from a secret
//! mounted as files, the way OpenFaaS's gateway reads them.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::error::{Error, Result};

/// The file of a mounted secret that holds the user name.
pub const USER_FILE: &str = "basic-auth-user";
/// The file of a mounted secret that holds the password.
pub const PASSWORD_FILE: &str = "basic-auth-password";

/// A user name and password for HTTP basic authentication.
///
/// ```
/// use faas_k8s::gateway::BasicAuth;
///
/// let auth = BasicAuth::new("admin", "s3cret");
/// let mut headers = http::HeaderMap::new();
/// assert!(!auth.allows(&headers));
/// headers.insert("authorization", "Basic YWRtaW46czNjcmV0".parse().unwrap());
/// assert!(auth.allows(&headers));
/// ```
#[derive(Clone)]
pub struct BasicAuth {
    user: String,
    password: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl BasicAuth {
    /// Credentials from a user name and password.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        BasicAuth {
            user: user.into(),
            password: password.into(),
        }
    }

    /// Reads `basic-auth-user` and `basic-auth-password` from `dir` (a mounted
    /// Secret), trimming a trailing newline.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a file cannot be read, [`Error::InvalidConfig`] when
    /// either is empty.
    pub fn from_secret_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let read = |file: &str| -> Result<String> {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            let text = text.trim_end_matches(['\r', '\n']).to_owned();
            if text.is_empty() {
                return Err(Error::InvalidConfig(format!("{} is empty", path.display())));
            }
            Ok(text)
        };
        Ok(BasicAuth::new(read(USER_FILE)?, read(PASSWORD_FILE)?))
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether `headers` carry these credentials.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(encoded) = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Basic ")
                    .or_else(|| v.strip_prefix("basic "))
            })
        else {
            return false;
        };
        let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let expected = format!("{}:{}", self.user, self.password);
        constant_time_eq(&decoded, expected.as_bytes())
    }
}

/// Compares without returning early on the first differing byte, so the time
/// taken does not tell how much of a guess was right. (Two lines; not worth a
/// dependency.)
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_mounted_secret_and_checks_headers() {
        let dir = std::env::temp_dir().join(format!("faas-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(USER_FILE), "admin\n").unwrap();
        std::fs::write(dir.join(PASSWORD_FILE), "pw").unwrap();
        let auth = BasicAuth::from_secret_dir(&dir).unwrap();
        assert_eq!(auth.user(), "admin");
        let header = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value.parse().unwrap());
            headers
        };
        assert!(auth.allows(&header(&format!("Basic {}", STANDARD.encode("admin:pw")))));
        assert!(!auth.allows(&header(&format!("Basic {}", STANDARD.encode("admin:px")))));
        assert!(!auth.allows(&header("Bearer x")));
        assert!(!auth.allows(&header("Basic !!!")));
        std::fs::write(dir.join(PASSWORD_FILE), "\n").unwrap();
        assert!(matches!(
            BasicAuth::from_secret_dir(&dir),
            Err(Error::InvalidConfig(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            BasicAuth::from_secret_dir(&dir),
            Err(Error::Io { .. })
        ));
    }
}
