//! Decoding hostile bytes never allocates more than a small multiple of the frame limit.
//! A counting global allocator records the peak of live bytes while each decode runs; this test
//! binary has a single test so nothing else allocates concurrently.
// A counting allocator must implement the unsafe GlobalAlloc trait; it only forwards to System.
#![allow(unsafe_code)]

use proptest::prelude::*;
use pwn_proto::codec::FRAME_SIZE_MAX;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Decoding may allocate at most this much beyond what was live before.
const DECODE_ALLOCATION_MAX: usize = 8 * FRAME_SIZE_MAX;

fn peak_during(f: impl FnOnce()) -> usize {
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    f();
    PEAK.load(Ordering::SeqCst) - before
}

fn length_bomb(tag: u8, claimed: u32) -> Vec<u8> {
    // A frame of the maximum size whose body claims a huge collection right after the tag.
    let mut body = vec![tag];
    body.extend_from_slice(&claimed.to_le_bytes());
    body.resize(FRAME_SIZE_MAX, 0xff);
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

#[test]
fn decoding_never_allocates_beyond_the_bound() {
    // Length bombs against every kind that holds a collection.
    for tag in [20u8, 21, 50, 51, 52] {
        let frame = length_bomb(tag, u32::MAX);
        let peak = peak_during(|| {
            let _ = pwn_proto::decode_frame(&frame);
        });
        assert!(peak <= DECODE_ALLOCATION_MAX, "kind {tag}: {peak} bytes allocated");
    }
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 256, ..ProptestConfig::default() });
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..FRAME_SIZE_MAX + 16), |bytes| {
            let peak = peak_during(|| {
                let _ = pwn_proto::decode_frame(&bytes);
                let _ = pwn_proto::decode_datagram(&bytes);
            });
            prop_assert!(peak <= DECODE_ALLOCATION_MAX, "{} bytes allocated for {} input bytes", peak, bytes.len());
            Ok(())
        })
        .unwrap();
}
