//! Just enough of a SOCKS5 client (RFC 1928, RFC 1929) to speak through a proxy by hand.

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The client side of a SOCKS5 handshake (RFC 1928) with optional username/password
/// (RFC 1929), ending in a CONNECT to `destination`. `Err` says at which step the proxy
/// refused or hung up.
pub async fn socks5_connect(
    stream: &mut TcpStream,
    credentials: Option<(&str, &str)>,
    destination: SocketAddr,
) -> Result<(), String> {
    const VERSION: u8 = 0x05;
    const NO_AUTH: u8 = 0x00;
    const USERNAME: u8 = 0x02;
    const CONNECT: u8 = 0x01;
    const IPV4: u8 = 0x01;

    let method = if credentials.is_some() { USERNAME } else { NO_AUTH };
    stream.write_all(&[VERSION, 1, method]).await.map_err(|error| format!("greeting: {error}"))?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).await.map_err(|error| format!("method choice: {error}"))?;
    if choice != [VERSION, method] {
        return Err(format!("method {method:#04x} refused: {choice:02x?}"));
    }

    if let Some((user, password)) = credentials {
        let mut request = vec![0x01, u8::try_from(user.len()).expect("short user name")];
        request.extend_from_slice(user.as_bytes());
        request.push(u8::try_from(password.len()).expect("short password"));
        request.extend_from_slice(password.as_bytes());
        stream.write_all(&request).await.map_err(|error| format!("credentials: {error}"))?;
        let mut status = [0u8; 2];
        stream.read_exact(&mut status).await.map_err(|error| format!("auth status: {error}"))?;
        if status[1] != 0x00 {
            return Err(format!("credentials refused: {status:02x?}"));
        }
    }

    let IpAddr::V4(ip) = destination.ip() else {
        return Err(format!("{destination} is not IPv4"));
    };
    let mut request = vec![VERSION, CONNECT, 0x00, IPV4];
    request.extend_from_slice(&ip.octets());
    request.extend_from_slice(&destination.port().to_be_bytes());
    stream.write_all(&request).await.map_err(|error| format!("connect request: {error}"))?;
    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).await.map_err(|error| format!("connect reply: {error}"))?;
    if reply[1] != 0x00 {
        return Err(format!("connect refused with reply code {:#04x}", reply[1]));
    }
    // The bound address: IPv4 (4), domain (length-prefixed) or IPv6 (16), then the port.
    let address_len = match reply[3] {
        0x01 => 4,
        0x04 => 16,
        0x03 => usize::from(stream.read_u8().await.map_err(|error| format!("bound address: {error}"))?),
        other => return Err(format!("unknown address type {other:#04x} in the reply")),
    };
    let mut bound = vec![0u8; address_len + 2];
    stream.read_exact(&mut bound).await.map_err(|error| format!("bound address: {error}"))?;
    Ok(())
}
