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

    /// Whether [`IpMasking::apply`] would forward anything but `address` itself, decided
    /// without allocating: the agent asks this of every record.
    pub fn changes(&self, address: &str) -> bool {
        match self.mode {
            IpMaskMode::Off => false,
            IpMaskMode::Remove => true,
            IpMaskMode::Prefix => {
                // The usual case first. The IPv4 parser refuses leading zeros, signs and
                // spaces, so text it accepts is already written as `Display` writes it.
                if let Ok(v4) = address.parse::<Ipv4Addr>() {
                    return mask_v4(v4, self.ipv4_prefix) != v4;
                }
                match address.trim().parse::<IpAddr>() {
                    Err(_) => true,
                    Ok(parsed) => {
                        let masked = self.mask(parsed);
                        masked != parsed || !written_as(address, masked)
                    }
                }
            }
        }
    }

    /// Replace `address` by what [`IpMasking::apply`] forwards, in the string it already has
    /// for an IPv4 address; untouched when that is the same text.
    pub fn mask_in_place(&self, address: &mut Option<String>) {
        let Some(current) = address.as_mut() else {
            return;
        };
        // The usual case, parsed once: an IPv4 address the parser accepts is already written
        // as `Display` writes it (see `changes`), so only a masked one is rewritten.
        if let (IpMaskMode::Prefix, Ok(v4)) = (self.mode, current.parse::<Ipv4Addr>()) {
            let masked = mask_v4(v4, self.ipv4_prefix);
            if masked != v4 {
                current.clear();
                write_v4(current, masked);
            }
            return;
        }
        if self.changes(current) {
            *address = self.apply(current);
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

/// Whether `text` is exactly how `address` is written (`Display`), compared on the stack.
fn written_as(text: &str, address: IpAddr) -> bool {
    use std::fmt::Write;
    // The longest form, an IPv6 address with an embedded IPv4 one, is 45 bytes.
    struct Stack {
        buf: [u8; 64],
        len: usize,
    }
    impl Write for Stack {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let end = self.len + s.len();
            let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
            slot.copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
    let mut written = Stack {
        buf: [0; 64],
        len: 0,
    };
    write!(written, "{address}").is_ok() && written.buf.get(..written.len) == Some(text.as_bytes())
}

/// `address` as `Display` writes it (dotted decimal), without the formatting machinery.
fn write_v4(out: &mut String, address: Ipv4Addr) {
    for (i, octet) in address.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
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
