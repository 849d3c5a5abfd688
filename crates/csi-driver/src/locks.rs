//! In-process locks keyed by volume id, node id or CSI name.
//!
//! Operations on the same key run one after another; a caller that cannot get the lock within the
//! configured wait gets ABORTED ("an operation is already in progress"), which the CSI sidecars retry.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::{Error, Result};

/// A set of named locks; entries exist only while someone holds or waits for them.
#[derive(Debug, Default)]
pub struct KeyedLocks {
    entries: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// Holds one key's lock until dropped.
#[derive(Debug)]
pub struct KeyGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    /// Takes the lock of `key`, waiting at most `wait`; ABORTED naming `what` otherwise.
    pub async fn lock(&self, key: &str, what: &str, wait: Duration) -> Result<KeyGuard<'_>> {
        let entry = {
            let mut entries = self
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(entries.entry(key.to_owned()).or_default())
        };
        let mut guard = KeyGuard {
            locks: self,
            key: key.to_owned(),
            guard: None,
        };
        match tokio::time::timeout(wait, entry.lock_owned()).await {
            Ok(inner) => {
                guard.guard = Some(inner);
                Ok(guard)
            }
            // Dropping `guard` (holding nothing) still removes the entry if nobody else uses it.
            Err(_) => Err(Error::Aborted(format!(
                "an operation on {what} is already in progress; try again later"
            ))),
        }
    }

    /// How many keys are currently held or awaited.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether no key is held or awaited.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut entries = self
            .locks
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Only the map holds the entry now: nobody holds or waits for it.
        if entries.get(&self.key).is_some_and(|e| Arc::strong_count(e) == 1) {
            entries.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_per_key_others_wait_or_abort() {
        let locks = KeyedLocks::default();
        let a = locks
            .lock("vol-a", "volume vol-a", Duration::from_millis(10))
            .await
            .unwrap();
        // Another key is independent.
        let b = locks
            .lock("vol-b", "volume vol-b", Duration::from_millis(10))
            .await
            .unwrap();
        let e = locks
            .lock("vol-a", "volume vol-a", Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Aborted(_)) && e.to_string().contains("volume vol-a"),
            "{e}"
        );
        assert_eq!(locks.len(), 2);
        drop(a);
        let a2 = locks
            .lock("vol-a", "volume vol-a", Duration::from_millis(10))
            .await
            .unwrap();
        drop((a2, b));
        assert!(locks.is_empty(), "entries are removed when nobody uses them");
    }

    #[tokio::test]
    async fn a_waiter_gets_the_lock_when_the_holder_releases_it() {
        let locks = Arc::new(KeyedLocks::default());
        let held = locks
            .lock("n", "node n", Duration::from_millis(10))
            .await
            .unwrap();
        let waiter = {
            let locks = Arc::clone(&locks);
            tokio::spawn(async move {
                locks
                    .lock("n", "node n", Duration::from_secs(5))
                    .await
                    .map(|_| ())
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        waiter.await.unwrap().unwrap();
        assert!(locks.is_empty());
    }
}
