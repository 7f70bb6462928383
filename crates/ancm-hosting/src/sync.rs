//! The crate's one lock-poisoning policy: recover the guard and carry on.
//!
//! Every piece of state behind these locks is consistent at every step (each critical section
//! is a short replace, push, take or prune), so a thread that panicked while holding one leaves
//! nothing half-done. Skipping the work instead would silently switch off what the lock
//! guards (rapid-fail protection, the serving child), and a default would hide state.
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, recovering the guard if it is poisoned.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks `lock`, recovering the guard if it is poisoned.
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks `lock`, recovering the guard if it is poisoned.
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisoned_locks_are_recovered() {
        let mutex = Mutex::new(1);
        let rw = RwLock::new(1);
        let _ = std::thread::scope(|s| {
            s.spawn(|| {
                let _m = lock(&mutex);
                let _w = write(&rw);
                panic!("poison both");
            })
            .join()
        });
        assert!(mutex.is_poisoned() && rw.is_poisoned());
        *lock(&mutex) += 1;
        *write(&rw) += 1;
        assert_eq!((*lock(&mutex), *read(&rw)), (2, 2));
    }
}
