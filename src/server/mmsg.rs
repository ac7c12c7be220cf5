//! Many datagrams per system call (Linux `recvmmsg` / `sendmmsg`): a busy
//! UDP thread reads up to [`BATCH`] questions at once and sends their
//! answers at once; an idle one still wakes for a single question.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Datagrams taken per call.
pub const BATCH: usize = 32;
/// The largest datagram read whole (a UDP payload's limit).
const MAX_DATAGRAM: usize = 65535;

/// Receive buffers and the kernel's message headers for one thread.
pub struct Batch {
    bufs: Vec<u8>,
    names: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    /// Datagrams of the last receive.
    len: usize,
}

impl Batch {
    pub fn new() -> Self {
        // Zeroed memory: pages a datagram never reaches are never touched.
        // SAFETY: all-zero is a valid `sockaddr_storage`, `iovec` and
        // `mmsghdr` (null pointers, zero lengths).
        let names = (0..BATCH).map(|_| unsafe { zeroed::<libc::sockaddr_storage>() }).collect();
        let iovs = (0..BATCH).map(|_| unsafe { zeroed::<libc::iovec>() }).collect();
        let hdrs = (0..BATCH).map(|_| unsafe { zeroed::<libc::mmsghdr>() }).collect();
        Batch { bufs: vec![0u8; BATCH * MAX_DATAGRAM], names, iovs, hdrs, len: 0 }
    }

    /// Waits for at least one datagram (up to the socket's read timeout)
    /// and takes every one already queued, up to [`BATCH`].
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // Each vector's pointer taken once: indexing again would re-borrow
        // it and void the pointers already handed out.
        let (bufs, names, iovs) = (self.bufs.as_mut_ptr(), self.names.as_mut_ptr(), self.iovs.as_mut_ptr());
        for i in 0..BATCH {
            // SAFETY: `i < BATCH`, within each vector's length; `iov`
            // points at this batch's own `iovec` `i`.
            let (name, iov) = unsafe { (names.add(i), iovs.add(i)) };
            unsafe { iov.write(libc::iovec { iov_base: bufs.add(i * MAX_DATAGRAM).cast(), iov_len: MAX_DATAGRAM }) };
            // SAFETY: all-zero is a valid `msghdr`; its pointers are set
            // next, to this batch's own buffers.
            let mut hdr: libc::msghdr = unsafe { zeroed() };
            hdr.msg_name = name.cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = iov;
            hdr.msg_iovlen = 1;
            self.hdrs[i] = libc::mmsghdr { msg_hdr: hdr, msg_len: 0 };
        }
        self.len = 0;
        // SAFETY: `hdrs` holds BATCH headers whose buffers live in `self`.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.len = n as usize;
        Ok(self.len)
    }

    /// The `i`-th datagram of the last receive and who sent it (`None` for
    /// an address family that is not IP).
    pub fn datagram(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let hdr = &self.hdrs[i];
        let len = (hdr.msg_len as usize).min(MAX_DATAGRAM);
        let data = &self.bufs[i * MAX_DATAGRAM..i * MAX_DATAGRAM + len];
        (data, socket_addr(&self.names[i], hdr.msg_hdr.msg_namelen as usize))
    }

    /// Sends `replies[i]` to the sender of datagram `i`, for each `i` in
    /// `ready`, as many per call as the kernel takes. A reply the kernel
    /// refuses is dropped (as a failed `send_to` was) and the rest still go.
    pub fn send(&mut self, fd: RawFd, ready: &[usize], replies: &[Vec<u8>]) {
        let mut iovs: [libc::iovec; BATCH] =
            std::array::from_fn(|_| libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 });
        // SAFETY: all-zero is a valid `mmsghdr`.
        let mut hdrs: [libc::mmsghdr; BATCH] = std::array::from_fn(|_| unsafe { zeroed() });
        let n = ready.len().min(BATCH);
        let (names, iov_at) = (self.names.as_mut_ptr(), iovs.as_mut_ptr());
        for (k, &i) in ready.iter().take(n).enumerate() {
            let reply = &replies[i];
            // SAFETY: `i` is a datagram of the last receive and `k < n`,
            // both below BATCH: within `names` and `iovs`.
            let (name, iov) = unsafe { (names.add(i), iov_at.add(k)) };
            // SAFETY: `iov` is `iovs[k]`, written through the one pointer.
            unsafe { iov.write(libc::iovec { iov_base: reply.as_ptr() as *mut libc::c_void, iov_len: reply.len() }) };
            hdrs[k].msg_hdr.msg_name = name.cast();
            hdrs[k].msg_hdr.msg_namelen = self.hdrs[i].msg_hdr.msg_namelen;
            hdrs[k].msg_hdr.msg_iov = iov;
            hdrs[k].msg_hdr.msg_iovlen = 1;
        }
        let mut at = 0;
        while at < n {
            // SAFETY: headers `at..n` point at live replies and addresses.
            let sent = unsafe { libc::sendmmsg(fd, hdrs[at..].as_mut_ptr(), (n - at) as libc::c_uint, 0) };
            if sent <= 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::debug!(error = %e, "udp send");
                at += 1;
                continue;
            }
            at += sent as usize;
        }
    }
}

/// The IP address and port the kernel wrote into `ss` (`len` bytes).
fn socket_addr(ss: &libc::sockaddr_storage, len: usize) -> Option<SocketAddr> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a `sockaddr_in`,
            // and storage is aligned and large enough for any address.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for `sockaddr_in6`.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
