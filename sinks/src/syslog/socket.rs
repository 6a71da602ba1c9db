//! Socket probes of the stream transports (TCP, TLS): has the peer closed
//! or reset, how many bytes it has not acknowledged yet (`SIOCOUTQ`), the
//! send buffer cap, and the wait until everything written is acknowledged.

use std::os::fd::AsRawFd;
use std::time::Duration;

use tokio::net::TcpStream;

/// Longest pause between two checks of the unacknowledged byte count.
const ACK_POLL_MAX: Duration = Duration::from_millis(50);

/// Non-blocking peek on the socket itself (tokio's `try_read` only reads
/// when the reactor has already seen readiness, so it can miss a fresh FIN).
fn peer_closed(s: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: `b` is a valid 1-byte buffer for the duration of the call and the
    // fd is owned by `s`, which outlives it.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            b.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n == 0 {
        return true;
    }
    if n < 0 {
        let e = std::io::Error::last_os_error();
        return e.kind() != std::io::ErrorKind::WouldBlock
            && e.kind() != std::io::ErrorKind::Interrupted;
    }
    false
}

/// Caps the socket's send buffer at [`super::STREAM_SNDBUF`].
pub(super) fn limit_sndbuf(s: &TcpStream) -> std::io::Result<()> {
    let v = super::STREAM_SNDBUF as libc::c_int;
    // SAFETY: `v` is a c_int that lives across the call; the fd is owned by `s`.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Bytes written to the connection that the peer has not acknowledged yet
/// (`SIOCOUTQ`: unsent plus sent-but-unacknowledged).
fn unacked_bytes(s: &TcpStream) -> std::io::Result<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (= TIOCOUTQ) writes one c_int to the pointer, which
    // is valid for the call; the fd is owned by `s`.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::TIOCOUTQ, &mut n as *mut libc::c_int) };
    if r == 0 {
        Ok(n.max(0) as u64)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The TCP state (`TCP_INFO`'s `tcpi_state`, e.g. 1 = ESTABLISHED).
fn tcp_state(s: &TcpStream) -> std::io::Result<u8> {
    // SAFETY: an all-zero tcp_info is valid (plain integers).
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` are valid for the call and `len` holds the
    // buffer's size; the kernel writes at most that much.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(info.tcpi_state)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

const TCP_ESTABLISHED: u8 = 1;
const TCP_CLOSE_WAIT: u8 = 8;

/// Waits until the peer has acknowledged every byte written to `s`. Fails
/// when the connection is gone (reset, or closed with data outstanding) or
/// when the peer acknowledged nothing more for `timeout` (it stopped
/// reading: its receive window is full).
pub(super) async fn wait_acked(s: &TcpStream, timeout: Duration) -> std::io::Result<()> {
    let mut least = u64::MAX;
    let mut progress = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let state = tcp_state(s)?;
        // CLOSE_WAIT: the peer sent FIN after reading; what it acknowledged
        // before that is delivered, what it did not will be reset.
        if state != TCP_ESTABLISHED && state != TCP_CLOSE_WAIT {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection closed before the peer acknowledged every message",
            ));
        }
        let q = unacked_bytes(s)?;
        if q == 0 {
            return Ok(());
        }
        if q < least {
            least = q;
            progress = tokio::time::Instant::now();
        } else if progress.elapsed() >= timeout {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the receiver acknowledged nothing for {timeout:?} ({q} bytes outstanding): \
                     it is not reading"
                ),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(ACK_POLL_MAX);
    }
}

/// How a stream connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gone {
    /// FIN (or TLS close_notify): the peer read what it acknowledged.
    Closed,
    /// Reset: the peer may have discarded acknowledged data.
    Reset,
}

pub(super) fn tcp_gone(s: &TcpStream) -> Option<Gone> {
    match tcp_state(s) {
        Ok(TCP_ESTABLISHED) | Ok(TCP_CLOSE_WAIT) => {}
        _ => return Some(Gone::Reset),
    }
    peer_closed(s).then_some(Gone::Closed)
}

/// Like [`tcp_gone`] for TLS: what the server sent (session tickets after
/// the handshake, a close_notify) is read straight off the socket and fed
/// to rustls, so tickets are consumed instead of passing for a close.
pub(super) fn tls_gone(t: &mut tokio_rustls::client::TlsStream<TcpStream>) -> Option<Gone> {
    use std::io::Read as _;
    let (sock, conn) = t.get_mut();
    match tcp_state(sock) {
        Ok(TCP_ESTABLISHED) | Ok(TCP_CLOSE_WAIT) => {}
        _ => return Some(Gone::Reset),
    }
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: `buf` is valid for its length during the call; the fd is
        // owned by `sock`.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n == 0 {
            return Some(Gone::Closed);
        }
        if n < 0 {
            match std::io::Error::last_os_error().kind() {
                std::io::ErrorKind::WouldBlock => break,
                std::io::ErrorKind::Interrupted => continue,
                _ => return Some(Gone::Reset),
            }
        }
        let mut rd: &[u8] = &buf[..n as usize];
        while !rd.is_empty() {
            match conn.read_tls(&mut rd) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => return Some(Gone::Reset),
            }
            if conn.process_new_packets().is_err() {
                return Some(Gone::Reset);
            }
        }
    }
    // A close_notify reads as end of stream; data from a syslog receiver
    // (it never sends any) is ignored.
    match conn.reader().read(&mut buf) {
        Ok(0) => Some(Gone::Closed),
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
        Err(_) => Some(Gone::Closed),
    }
}
