//! The value syntaxes the config file, the environment and flags share: sizes (`10MiB`,
//! `5242880`) and listen addresses (`HOST:PORT`, where HOST is an IP address or a name resolved
//! when the server starts). Parsing only; nothing here binds or reads the environment.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// `1048576`, `512KiB`, `64MiB`, `2GiB` (also `K`, `M`, `G`, `KB`, `MB`, `GB` as binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (try `64MiB`)"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        other => {
            return Err(format!(
                "`{other}` is not a size unit (use KiB, MiB or GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// A byte count as the config file writes it; shown in the largest exact unit (`10MiB`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse_size(s).map(ByteSize)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        match [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")]
            .into_iter()
            .find(|(unit, _)| n > 0 && n.is_multiple_of(*unit))
        {
            Some((unit, name)) => write!(f, "{}{name}", n / unit),
            None => write!(f, "{n}"),
        }
    }
}

/// Where a server listens: `HOST:PORT` (`[v6]:PORT` for an IPv6 address). A host name is kept as
/// written and resolved when the server starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    host: String,
    port: u16,
}

impl Listen {
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address, when the host is written as one (`None` for a host name).
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.host.trim_matches(['[', ']']).parse().ok()
    }

    /// The addresses the host resolves to, for this port.
    pub async fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .collect())
    }
}

impl From<SocketAddr> for Listen {
    fn from(a: SocketAddr) -> Self {
        Listen {
            host: a.ip().to_string(),
            port: a.port(),
        }
    }
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(a.into());
        }
        let bad = || format!("`{s}` is not an address like 127.0.0.1:5000 or localhost:5000");
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let name_ok = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-')
            })
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !name_ok {
            return Err(bad());
        }
        Ok(Listen {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_show_in_their_unit() {
        assert_eq!("10MiB".parse(), Ok(ByteSize(10 * MIB)));
        assert_eq!("5242880".parse(), Ok(ByteSize(5 * MIB)));
        assert!("ten".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(10 * MIB).to_string(), "10MiB");
        assert_eq!(ByteSize(2 * GIB).to_string(), "2GiB");
        assert_eq!(ByteSize(1536).to_string(), "1536");
        assert_eq!(ByteSize(0).to_string(), "0");
    }

    #[test]
    fn listen_takes_addresses_and_host_names() {
        let l: Listen = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(
            (l.host(), l.port(), l.to_string().as_str()),
            ("127.0.0.1", 5000, "127.0.0.1:5000")
        );
        let l: Listen = "[::1]:5000".parse().unwrap();
        assert_eq!((l.host(), l.to_string().as_str()), ("::1", "[::1]:5000"));
        let l: Listen = "localhost:5000".parse().unwrap();
        assert_eq!((l.host(), l.port()), ("localhost", 5000));
        for bad in [
            "nowhere",
            "localhost",
            ":5000",
            "localhost:99999",
            "a b:1",
            "-x:1",
            "x..y:1",
        ] {
            let e = bad.parse::<Listen>().unwrap_err();
            assert!(e.contains("not an address like"), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn localhost_resolves_to_loopback() {
        let l: Listen = "localhost:5000".parse().unwrap();
        let addrs = l.resolve().await.expect("localhost resolves");
        assert!(
            !addrs.is_empty()
                && addrs
                    .iter()
                    .all(|a| a.ip().is_loopback() && a.port() == 5000)
        );
    }
}
