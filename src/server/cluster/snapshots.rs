//! Snapshots of the directory in JetStream's object store: what lets a
//! node join a running network without replaying its whole history.
//!
//! A snapshot is the directory (`State::snapshot`) as it stood after a
//! known stream sequence; a joining node restores the newest one it can
//! read and applies the stream from the sequence after it. One node (see
//! `chores`) writes one now and then (after `--snapshot-every` events, or a quarter
//! of the stream's retention, whichever comes first, so the stream always
//! still holds what follows the newest snapshot), named by its sequence,
//! zero-padded so that names sort as sequences do; the older ones are
//! removed, all but a spare.

use std::io;

use async_nats::jetstream::{self, object_store, stream};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use super::{ClusterConfig, Names};

/// Snapshots kept besides the newest: a node reading one while another
/// removes it still finds one.
const SPARE: usize = 1;
/// The most a snapshot may be: far beyond any directory this server holds
/// (about 60 bytes a user), and a bound on what a join reads.
const MAX_SNAPSHOT_BYTES: usize = 512 * 1024 * 1024;
/// How long one listing of the store may take, and how many are tried.
const LIST_TRY: std::time::Duration = std::time::Duration::from_secs(5);
const LIST_TRIES: usize = 3;

#[derive(Clone)]
pub struct Snapshots {
    store: object_store::ObjectStore,
}

fn failed(what: &str, error: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {error}"))
}

fn object_name(seq: u64) -> String {
    format!("directory-{seq:020}")
}

fn seq_of(name: &str) -> Option<u64> {
    name.strip_prefix("directory-")?.parse().ok()
}

impl Snapshots {
    /// The network's snapshot store, made if it does not exist yet.
    pub async fn open(
        jetstream: &jetstream::Context,
        names: &Names,
        cluster: &ClusterConfig,
    ) -> io::Result<Self> {
        if let Ok(store) = jetstream.get_object_store(&names.snapshots).await {
            return Ok(Snapshots { store });
        }
        let config = object_store::Config {
            bucket: names.snapshots.clone(),
            storage: stream::StorageType::File,
            num_replicas: cluster.replicas,
            ..Default::default()
        };
        match jetstream.create_object_store(config).await {
            Ok(store) => Ok(Snapshots { store }),
            // Another node made it at the same moment (NATS 2.9 refuses the
            // second of two such creations as overlapping the first).
            Err(e) => match jetstream.get_object_store(&names.snapshots).await {
                Ok(store) => Ok(Snapshots { store }),
                Err(_) => Err(failed(&format!("the snapshot store {}", names.snapshots), e)),
            },
        }
    }

    /// The sequences of the snapshots there are, newest first. A listing
    /// runs until it has seen as many objects as the store said it held
    /// when it began, which a write at the same moment can put off: so it
    /// is bounded, and tried again.
    async fn sequences(&self) -> io::Result<Vec<u64>> {
        let mut failure = io::Error::other("listing snapshots: never tried");
        for _ in 0..LIST_TRIES {
            match tokio::time::timeout(LIST_TRY, self.list()).await {
                Ok(Ok(seqs)) => return Ok(seqs),
                Ok(Err(e)) => failure = e,
                Err(_) => failure = io::Error::other("listing snapshots: no answer"),
            }
        }
        Err(failure)
    }

    async fn list(&self) -> io::Result<Vec<u64>> {
        let mut list = self.store.list().await.map_err(|e| failed("listing snapshots", e))?;
        let mut seqs = Vec::new();
        while let Some(info) = list.next().await {
            let info = info.map_err(|e| failed("listing snapshots", e))?;
            if !info.deleted
                && let Some(seq) = seq_of(&info.name)
            {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable_by(|a, b| b.cmp(a));
        Ok(seqs)
    }

    /// The snapshots there are, newest first, each read only when asked
    /// for: `read` is called with each until it accepts one.
    pub async fn newest_readable<T>(
        &self,
        mut read: impl FnMut(u64, &[u8]) -> Option<T>,
    ) -> io::Result<Option<T>> {
        for seq in self.sequences().await? {
            let Ok(mut object) = self.store.get(object_name(seq)).await else { continue };
            let mut bytes = Vec::new();
            let limit = (MAX_SNAPSHOT_BYTES + 1) as u64;
            if (&mut object).take(limit).read_to_end(&mut bytes).await.is_err()
                || bytes.len() > MAX_SNAPSHOT_BYTES
            {
                tracing::warn!(seq, "a snapshot could not be read whole; trying an older one");
                continue;
            }
            if let Some(taken) = read(seq, &bytes) {
                return Ok(Some(taken));
            }
        }
        Ok(None)
    }

    /// Stores the directory as it stood after stream sequence `seq`, then
    /// removes the snapshots older than the spare ones.
    pub async fn write(&self, seq: u64, bytes: Vec<u8>) -> io::Result<()> {
        self.store
            .put(object_name(seq).as_str(), &mut bytes.as_slice())
            .await
            .map_err(|e| failed("writing a snapshot", e))?;
        for old in self.sequences().await?.into_iter().skip(1 + SPARE) {
            // Another node may have removed it first: that is fine.
            let _ = self.store.delete(object_name(old)).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_as_sequences_do() {
        let (a, b) = (object_name(9), object_name(10));
        assert!(a < b);
        assert_eq!((seq_of(&a), seq_of(&b)), (Some(9), Some(10)));
        assert_eq!(seq_of("something-else"), None);
        assert_eq!(seq_of(&object_name(u64::MAX)), Some(u64::MAX));
    }
}
