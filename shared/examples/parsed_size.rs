//! How many heap bytes parsed metadata holds per byte of its file: what
//! the server's kept repositories are costed at (`server/src/kept_current.rs`).
//!
//!     cargo run --release -p tagtrust-shared --example parsed_size -- [TAGS]
//!
//! Counts the bytes allocated and not yet freed across
//! `Metadata::from_bytes` with a counting global allocator, for a targets
//! file of TAGS (10,000) tags (a digest and a size each, the default media
//! type left implicit, as `tag set` signs them) and for a root of four
//! roles.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use tagtrust_shared::{Metadata, Role, Root, SigningKey, TargetFile, Targets};

/// The system allocator, counting the bytes it holds.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        LIVE.fetch_add(size as isize - layout.size() as isize, Relaxed);
        System.realloc(ptr, layout, size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Sign `signed` and report what parsing its bytes holds on the heap.
fn report<T: Role>(what: &str, signed: T, key: &SigningKey) {
    let mut metadata = Metadata::new(signed).expect("metadata");
    metadata.sign(key);
    let bytes = metadata.to_bytes();
    drop(metadata);
    let before = LIVE.load(Relaxed);
    let parsed = Metadata::<T>::from_bytes(&bytes).expect("parses");
    let held = LIVE.load(Relaxed) - before;
    println!(
        "{what}: {} bytes, parsed {held} heap bytes ({:.1}× the file)",
        bytes.len(),
        held as f64 / bytes.len() as f64
    );
    drop(parsed);
}

fn main() {
    let tags: u64 = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("TAGS is a number"))
        .unwrap_or(10_000);
    let expires = chrono::Utc::now() + chrono::Duration::days(90);
    let key = SigningKey::generate();
    let mut targets = Targets::new(1, expires);
    for i in 0..tags {
        let digest = format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        targets.targets.insert(
            format!("v1.{i}.0"),
            TargetFile {
                length: 1000 + i,
                hashes: [("sha256".to_string(), digest)].into_iter().collect(),
                custom: None,
                extra: Default::default(),
            },
        );
    }
    report(&format!("targets of {tags} tags"), targets, &key);
    let mut root = Root::new(expires);
    for role in ["root", "targets", "snapshot", "timestamp"] {
        root.add_key(role, SigningKey::generate().public_key());
    }
    report("root of four roles", root, &key);
}
