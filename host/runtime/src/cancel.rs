//! Ctrl-C: the first one asks every job to stop (isolated workers get a cancel line and a grace
//! period, in-process tasks see `is_cancelled()`); a second one kills every worker's process
//! group at once and exits with status 130.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static CANCEL: AtomicBool = AtomicBool::new(false);
static CHILDREN: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// True once the user asked to stop.
pub fn requested() -> bool {
    CANCEL.load(Ordering::SeqCst)
}

/// Asks every running job to stop.
pub fn request() {
    CANCEL.store(true, Ordering::SeqCst);
}

/// Installs the Ctrl-C (and SIGTERM) handler. Call once, from `main`.
pub fn install_handler() {
    let _ = ctrlc::set_handler(|| {
        if CANCEL.swap(true, Ordering::SeqCst) {
            for &pgid in CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                // SAFETY: plain syscall on a worker's own process group.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
            std::process::exit(130);
        }
        eprintln!("\narena: stopping (press Ctrl-C again to kill running jobs now)");
    });
}

/// Keeps a worker's process group in the kill list while it lives.
pub struct ChildGuard(i32);

impl ChildGuard {
    pub fn register(pgid: i32) -> Self {
        CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).insert(pgid);
        ChildGuard(pgid)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.0);
    }
}
