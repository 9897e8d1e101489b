//! IP address masking: keep a network prefix (IPv4 /24, IPv6 /48 by default) or drop the address.
//!
//! A masked address still tells a SIEM which network a request came from (enough for geo and
//! "new network" analytics) without naming the device. A value that is not an IP address is
//! removed rather than forwarded: it cannot be masked, and it may be a host name.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What happens to IP addresses on the way out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IpMaskMode {
    /// Zero the host bits beyond the configured prefixes.
    #[default]
    Prefix,
    /// Remove the address altogether.
    Remove,
    /// Forward addresses unchanged.
    Off,
}

/// IP masking as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpMasking {
    /// Prefix, remove or off.
    pub mode: IpMaskMode,
    /// Bits of an IPv4 address kept (0 to 32).
    pub ipv4_prefix: u8,
    /// Bits of an IPv6 address kept (0 to 128).
    pub ipv6_prefix: u8,
}

impl Default for IpMasking {
    fn default() -> Self {
        IpMasking {
            mode: IpMaskMode::Prefix,
            ipv4_prefix: 24,
            ipv6_prefix: 48,
        }
    }
}

impl IpMasking {
    /// The value to forward for `address`, or `None` to drop it.
    pub fn apply(&self, address: &str) -> Option<String> {
        match self.mode {
            IpMaskMode::Off => Some(address.to_string()),
            IpMaskMode::Remove => None,
            IpMaskMode::Prefix => {
                let parsed: IpAddr = address.trim().parse().ok()?;
                Some(self.mask(parsed).to_string())
            }
        }
    }

    /// The address with the host bits beyond the prefix zeroed. An IPv4-mapped IPv6 address is
    /// masked as the IPv4 address it carries, or the /48 would keep all of it.
    pub fn mask(&self, address: IpAddr) -> IpAddr {
        match address {
            IpAddr::V4(v4) => IpAddr::V4(mask_v4(v4, self.ipv4_prefix)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(mask_v4(v4, self.ipv4_prefix)),
                None => IpAddr::V6(mask_v6(v6, self.ipv6_prefix)),
            },
        }
    }
}

fn mask_v4(address: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let bits = u32::from(address);
    let mask = match prefix.min(32) {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n)),
    };
    Ipv4Addr::from(bits & mask)
}

fn mask_v6(address: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let bits = u128::from(address);
    let mask = match prefix.min(128) {
        0 => 0,
        n => u128::MAX << (128 - u32::from(n)),
    };
    Ipv6Addr::from(bits & mask)
}
