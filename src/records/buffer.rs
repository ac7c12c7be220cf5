//! [`Buffer`]: an immutable, shared byte buffer behind one thin pointer,
//! with two words the DNS index keeps beside each name.
//!
//! A million names at 100k Services are a million of these. In one
//! allocation: a 4-byte count, the 4-byte length, the index's two words
//! (the name's owner and how many names exist right below it), then the
//! bytes. The index's table then holds one pointer per name (8-byte slots,
//! half of them empty at times: hashbrown doubles), not the pointer and
//! the two words (16-byte slots), and the header is 16 bytes, as
//! `triomphe::ThinArc`'s count and length alone were.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering, fence};

#[repr(C)]
struct Header {
    count: AtomicU32,
    len: u32,
    /// Written by the index under its shard's write lock, read by nothing
    /// else: relaxed atomics, since readers of the bytes hold clones.
    words: [AtomicU32; 2],
}

const HEADER: usize = std::mem::size_of::<Header>();
const _: () = assert!(HEADER == 16);

/// The most clones at once before the process aborts (as `Arc` does): a
/// count that wrapped would free a buffer still in use.
const MAX_COUNT: u32 = i32::MAX as u32;

pub struct Buffer(NonNull<Header>);

// SAFETY: the bytes are never written after `Buffer::new`; the count and
// the words are atomics.
unsafe impl Send for Buffer {}
unsafe impl Sync for Buffer {}

// A length of at most u32::MAX plus the header is far below isize::MAX.
const _: () = assert!(usize::BITS == 64);

fn layout(len: usize) -> Layout {
    match Layout::from_size_align(HEADER + len, std::mem::align_of::<Header>()) {
        Ok(layout) => layout,
        // Unreachable: `len` is at most u32::MAX on a 64-bit target.
        Err(_) => std::process::abort(),
    }
}

impl Buffer {
    /// A buffer holding `bytes`, both words 0. Cut at 4 GiB: a name's
    /// answers are millions of times smaller (a message is at most 64 KiB,
    /// and an RRset of 10,000 endpoints 200 KiB).
    pub fn new(bytes: &[u8]) -> Self {
        let len = bytes.len().min(u32::MAX as usize);
        let layout = layout(len);
        // SAFETY: the layout is never zero-sized (the header is 16 bytes).
        let ptr = unsafe { alloc(layout) }.cast::<Header>();
        let Some(ptr) = NonNull::new(ptr) else { handle_alloc_error(layout) };
        let header =
            Header { count: AtomicU32::new(1), len: len as u32, words: [AtomicU32::new(0), AtomicU32::new(0)] };
        // SAFETY: `ptr` is a fresh allocation of HEADER + len bytes, aligned
        // for `Header`; the bytes go right after the header.
        unsafe {
            ptr.as_ptr().write(header);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.as_ptr().cast::<u8>().add(HEADER), len);
        }
        Buffer(ptr)
    }

    fn header(&self) -> &Header {
        // SAFETY: the allocation lives as long as any clone, and the header
        // is only ever changed through its atomics.
        unsafe { self.0.as_ref() }
    }

    pub fn bytes(&self) -> &[u8] {
        let len = self.header().len as usize;
        // SAFETY: `len` bytes were written after the header by `new` and
        // are never written again.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<u8>().add(HEADER), len) }
    }

    /// Word `i` (0 or 1).
    pub fn word(&self, i: usize) -> u32 {
        self.header().words[i].load(Ordering::Relaxed)
    }

    /// Sets word `i` (0 or 1): every clone sees it.
    pub fn set_word(&self, i: usize, value: u32) {
        self.header().words[i].store(value, Ordering::Relaxed);
    }

    /// Bytes of the allocation, header included (for the memory benchmark).
    pub fn allocated(&self) -> usize {
        HEADER + self.bytes().len()
    }
}

impl Clone for Buffer {
    fn clone(&self) -> Self {
        // Relaxed, as `Arc::clone`: a clone is made from a live reference,
        // which keeps the buffer alive meanwhile.
        if self.header().count.fetch_add(1, Ordering::Relaxed) >= MAX_COUNT {
            std::process::abort();
        }
        Buffer(self.0)
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if self.header().count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Every other clone's use of the bytes happens before the free.
        fence(Ordering::Acquire);
        let layout = layout(self.header().len as usize);
        // SAFETY: this was the last clone; the allocation was made by
        // `new` with this same layout.
        unsafe { dealloc(self.0.as_ptr().cast::<u8>(), layout) }
    }
}

impl PartialEq for Buffer {
    /// The same bytes (the words are the index's, not the content).
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 || self.bytes() == other.bytes()
    }
}

impl Eq for Buffer {}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer({} bytes)", self.bytes().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_bytes_and_words_across_threads() {
        let data: Vec<u8> = (0..=255).collect();
        let a = Buffer::new(&data);
        a.set_word(0, 7);
        std::thread::scope(|s| {
            for t in 0..4 {
                let (a, data) = (&a, &data);
                s.spawn(move || {
                    for _ in 0..10_000 {
                        let b = a.clone();
                        assert_eq!(b.bytes(), &data[..]);
                        assert_eq!(b.word(0), 7);
                        drop(b);
                    }
                    let mine = a.clone();
                    mine.set_word(1, t);
                });
            }
        });
        assert_eq!(a.header().count.load(Ordering::Relaxed), 1);
        assert!(a.word(1) < 4);
        assert_eq!(a.allocated(), 16 + 256);
        let empty = Buffer::new(&[]);
        assert_eq!(empty.bytes(), &[] as &[u8]);
        assert_eq!(empty, Buffer::new(&[]));
        assert_ne!(empty, a);
        assert_eq!(a, Buffer::new(&data));
    }
}
