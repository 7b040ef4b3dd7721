//! Where an example listens: `127.0.0.1` and a port from the command line,
//! `PORT`, or 8080.

use std::net::{Ipv4Addr, SocketAddr};

use crate::{Error, Result};

/// The port an example listens on when neither an argument nor `PORT` gives one.
pub const DEFAULT_PORT: u16 = 8080;

/// The environment variable that overrides [`DEFAULT_PORT`].
pub const PORT_ENV: &str = "PORT";

/// The address an example listens on, from the process: the first command
/// line argument, else `PORT`, else [`DEFAULT_PORT`]; always on `127.0.0.1`.
///
/// `cargo run --example quickstart -- 3000` and
/// `PORT=3000 cargo run --example quickstart` both listen on `127.0.0.1:3000`;
/// port 0 picks a free port.
///
/// # Errors
///
/// [`Error::InvalidPort`] when the value given is not a port number.
pub fn listen_addr() -> Result<SocketAddr> {
    let arg = std::env::args().nth(1);
    let env = std::env::var(PORT_ENV).ok();
    listen_addr_from(arg.as_deref(), env.as_deref())
}

/// The address for a port given as an argument (`arg`) or in `PORT` (`env`),
/// as [`listen_addr`] reads them. An empty value counts as not given.
///
/// ```
/// use faas_examples::listen_addr_from;
///
/// assert_eq!(listen_addr_from(None, None)?, "127.0.0.1:8080".parse().unwrap());
/// assert_eq!(listen_addr_from(None, Some("9000"))?, "127.0.0.1:9000".parse().unwrap());
/// assert_eq!(listen_addr_from(Some("3000"), Some("9000"))?, "127.0.0.1:3000".parse().unwrap());
/// assert!(listen_addr_from(Some("http"), None).is_err());
/// # Ok::<(), faas_examples::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::InvalidPort`] naming where the value came from.
pub fn listen_addr_from(arg: Option<&str>, env: Option<&str>) -> Result<SocketAddr> {
    let port = match (given(arg), given(env)) {
        (Some(value), _) => parse_port("the first argument", value)?,
        (None, Some(value)) => parse_port(PORT_ENV, value)?,
        (None, None) => DEFAULT_PORT,
    };
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// `value`, trimmed, unless it is absent or empty.
fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|value| !value.is_empty())
}

fn parse_port(origin: &'static str, value: &str) -> Result<u16> {
    value.parse().map_err(|source| Error::InvalidPort {
        origin,
        value: value.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_argument_wins_over_the_environment() {
        let addr = listen_addr_from(Some("3000"), Some("9000")).unwrap();
        assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], 3000)));
    }

    #[test]
    fn empty_values_fall_back() {
        let addr = listen_addr_from(Some(""), Some(" ")).unwrap();
        assert_eq!(addr.port(), DEFAULT_PORT);
        assert!(addr.ip().is_loopback());
    }

    #[test]
    fn a_bad_port_names_its_origin() {
        let error = listen_addr_from(None, Some("70000")).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidPort { origin: "PORT", value, .. } if value == "70000")
        );
        assert_eq!(
            error.to_string(),
            r#"PORT must be a port number (0 to 65535), got "70000""#
        );
    }
}
