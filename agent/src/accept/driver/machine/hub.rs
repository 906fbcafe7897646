//! EDGE: a network of one run: an Ethernet hub in halo's own process.
//! Each machine's NIC is qemu's `-netdev stream` over one end of a unix
//! socket pair (frames with a 4-byte big-endian length, as qemu writes
//! them); the hub sends every frame to every other machine of the
//! network. Nothing else is attached: no host interface, no route out,
//! no name on the filesystem, and it ends with halo.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The largest frame passed on (a jumbo frame and then some); a longer
/// length means the stream is garbage and the port is dropped.
const FRAME_MAX: usize = 65_536;

type Ports = Arc<Mutex<Vec<(usize, UnixStream)>>>;

#[derive(Debug, Default)]
pub struct Hub {
    ports: Ports,
    next: AtomicUsize,
}

impl Hub {
    /// A new port: the returned end goes to qemu (`-netdev stream` with
    /// `addr.type=fd`).
    pub fn attach(&self) -> std::io::Result<UnixStream> {
        let (mine, theirs) = UnixStream::pair()?;
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        self.ports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((id, mine.try_clone()?));
        let ports = Arc::clone(&self.ports);
        std::thread::spawn(move || forward(id, mine, &ports));
        Ok(theirs)
    }
}

/// Passes the frames of port `id` to every other port until it closes.
fn forward(id: usize, mut from: UnixStream, ports: &Ports) {
    let mut frame = Vec::with_capacity(FRAME_MAX + 4);
    loop {
        let mut len = [0u8; 4];
        if from.read_exact(&mut len).is_err() {
            break;
        }
        let n = u32::from_be_bytes(len) as usize;
        if n > FRAME_MAX {
            break;
        }
        frame.clear();
        frame.extend_from_slice(&len);
        frame.resize(4 + n, 0);
        if from.read_exact(&mut frame[4..]).is_err() {
            break;
        }
        let list = ports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (other, mut stream) in list.iter().map(|(i, s)| (*i, s)) {
            if other != id {
                // A machine that is gone just misses the frame.
                let _ = stream.write_all(&frame);
            }
        }
    }
    ports
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|(i, _)| *i != id);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn a_frame_reaches_every_other_port_and_not_its_sender() {
        let hub = Hub::default();
        let mut a = hub.attach().unwrap();
        let mut b = hub.attach().unwrap();
        let mut c = hub.attach().unwrap();
        a.write_all(&frame(b"hello")).unwrap();
        for s in [&mut b, &mut c] {
            let mut got = [0u8; 9];
            s.read_exact(&mut got).unwrap();
            assert_eq!(got.as_slice(), frame(b"hello").as_slice());
        }
        a.set_nonblocking(true).unwrap();
        let mut none = [0u8; 1];
        assert!(a.read(&mut none).is_err(), "the sender gets nothing back");
        // A second hub is another network: nothing crosses.
        let other = Hub::default();
        let mut d = other.attach().unwrap();
        d.set_nonblocking(true).unwrap();
        b.write_all(&frame(b"x")).unwrap();
        let mut got = [0u8; 5];
        a.set_nonblocking(false).unwrap();
        a.read_exact(&mut got).unwrap();
        assert!(d.read(&mut none).is_err());
    }
}
