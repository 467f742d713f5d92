//! The outbox's durable half: sled trees holding signed events until the hub acks them.
//!
//! Layout: tree `outbox` maps big-endian seq → record (class, created_ms, id,
//! signed message bytes); tree `meta` holds `last_seq`, counters and the last
//! good hub config. Nothing is reported stored before `flush` returns.

use rxedge_shared::outbox::Meta;
use rxedge_shared::protocol::Class;
use std::path::Path;
use uuid::Uuid;

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("outbox store: {0}")]
    Sled(#[from] sled::Error),
    /// A record does not decode (disk damage or a bug).
    #[error("outbox record {0} is corrupt")]
    Corrupt(u64),
}

/// One stored event.
#[derive(Debug, Clone)]
pub struct Record {
    /// What the core needs.
    pub meta: Meta,
    /// Signed message bytes (`{"body":…,"sig":…}`), resent byte for byte.
    pub msg: Vec<u8>,
}

const HEADER: usize = 1 + 8 + 16;

fn encode(r: &Record) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + r.msg.len());
    v.push(match r.meta.class {
        Class::Critical => 0,
        Class::Telemetry => 1,
    });
    v.extend_from_slice(&r.meta.created_ms.to_be_bytes());
    v.extend_from_slice(r.meta.id.as_bytes());
    v.extend_from_slice(&r.msg);
    v
}

fn decode(seq: u64, v: &[u8]) -> Result<Record, StoreError> {
    if v.len() < HEADER {
        return Err(StoreError::Corrupt(seq));
    }
    let class = match v[0] {
        0 => Class::Critical,
        1 => Class::Telemetry,
        _ => return Err(StoreError::Corrupt(seq)),
    };
    let created_ms = i64::from_be_bytes(v[1..9].try_into().map_err(|_| StoreError::Corrupt(seq))?);
    let id = Uuid::from_slice(&v[9..25]).map_err(|_| StoreError::Corrupt(seq))?;
    let msg = v[HEADER..].to_vec();
    Ok(Record {
        meta: Meta {
            seq,
            id,
            class,
            bytes: msg.len() as u64,
            created_ms,
        },
        msg,
    })
}

/// The sled database behind the outbox.
#[derive(Clone)]
pub struct OutboxStore {
    db: sled::Db,
    outbox: sled::Tree,
    meta: sled::Tree,
}

/// Counters kept beside the queue.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    /// Highest sequence ever assigned.
    pub last_seq: u64,
    /// Events acked.
    pub acked: u64,
    /// Telemetry dropped.
    pub dropped: u64,
}

fn get_u64(t: &sled::Tree, k: &str) -> Result<u64, StoreError> {
    Ok(t.get(k)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes))
}

impl OutboxStore {
    /// Open (or create) the store under `dir` with a small page cache.
    pub fn open(dir: &Path, cache_mib: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_mib.max(1) * 1024 * 1024)
            .flush_every_ms(Some(500))
            .open()?;
        let outbox = db.open_tree("outbox")?;
        let meta = db.open_tree("meta")?;
        Ok(Self { db, outbox, meta })
    }

    /// Every stored record, in sequence order, and the counters.
    pub fn load(&self) -> Result<(Vec<Record>, Counters), StoreError> {
        let mut out = Vec::new();
        for kv in self.outbox.iter() {
            let (k, v) = kv?;
            let seq = <[u8; 8]>::try_from(k.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt(0))?;
            match decode(seq, &v) {
                Ok(r) => out.push(r),
                // Keep going: one damaged record must not strand the rest.
                Err(e) => tracing::error!(error = %e, "skipping corrupt outbox record"),
            }
        }
        let c = Counters {
            last_seq: get_u64(&self.meta, "last_seq")?,
            acked: get_u64(&self.meta, "acked")?,
            dropped: get_u64(&self.meta, "dropped")?,
        };
        Ok((out, c))
    }

    /// The signed message of `seq`.
    pub fn msg(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        match self.outbox.get(seq.to_be_bytes())? {
            Some(v) => Ok(Some(decode(seq, &v)?.msg)),
            None => Ok(None),
        }
    }

    /// Write new records and evictions in one batch, update counters, and flush.
    /// Returns only when everything is on disk.
    pub async fn append(
        &self,
        recs: &[Record],
        evicted: &[u64],
        counters: Counters,
    ) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for r in recs {
            b.insert(&r.meta.seq.to_be_bytes(), encode(r));
        }
        for s in evicted {
            b.remove(&s.to_be_bytes());
        }
        self.outbox.apply_batch(b)?;
        self.put_counters(counters)?;
        self.db.flush_async().await?;
        Ok(())
    }

    fn put_counters(&self, c: Counters) -> Result<(), StoreError> {
        let mut m = sled::Batch::default();
        m.insert("last_seq", &c.last_seq.to_be_bytes());
        m.insert("acked", &c.acked.to_be_bytes());
        m.insert("dropped", &c.dropped.to_be_bytes());
        self.meta.apply_batch(m)?;
        Ok(())
    }

    /// Remove acked records. Not flushed at once: if they come back after a
    /// crash they are resent and the hub acks them as duplicates.
    pub fn remove_acked(&self, seqs: &[u64], counters: Counters) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for s in seqs {
            b.remove(&s.to_be_bytes());
        }
        self.outbox.apply_batch(b)?;
        self.put_counters(counters)
    }

    /// The last good hub config (signed bytes), if any.
    pub fn config(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get("config")?.map(|v| v.to_vec()))
    }

    /// Persist a verified hub config and flush.
    pub async fn set_config(&self, signed: &[u8]) -> Result<(), StoreError> {
        self.meta.insert("config", signed)?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// Another tree in the same sled database (one sled per directory).
    pub fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    /// Flush everything (at shutdown).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_reopen() -> Result<(), Box<dyn std::error::Error>> {
        let d = tempfile::tempdir()?;
        let rec = |seq: u64, class| Record {
            meta: Meta {
                seq,
                id: Uuid::from_u128(seq as u128),
                class,
                bytes: 3,
                created_ms: seq as i64 * 10,
            },
            msg: b"abc".to_vec(),
        };
        {
            let s = OutboxStore::open(d.path(), 1)?;
            s.append(
                &[
                    rec(1, Class::Critical),
                    rec(2, Class::Telemetry),
                    rec(3, Class::Critical),
                ],
                &[],
                Counters {
                    last_seq: 3,
                    acked: 0,
                    dropped: 0,
                },
            )
            .await?;
            s.append(
                &[],
                &[2],
                Counters {
                    last_seq: 3,
                    acked: 0,
                    dropped: 1,
                },
            )
            .await?;
            s.remove_acked(
                &[1],
                Counters {
                    last_seq: 3,
                    acked: 1,
                    dropped: 1,
                },
            )?;
            s.set_config(b"cfg").await?;
            s.flush().await?;
        }
        let s = OutboxStore::open(d.path(), 1)?;
        let (recs, c) = s.load()?;
        assert_eq!(recs.iter().map(|r| r.meta.seq).collect::<Vec<_>>(), vec![3]);
        assert_eq!(recs[0].meta.class, Class::Critical);
        assert_eq!(recs[0].meta.created_ms, 30);
        assert_eq!((c.last_seq, c.acked, c.dropped), (3, 1, 1));
        assert_eq!(s.config()?.as_deref(), Some(&b"cfg"[..]));
        assert_eq!(s.msg(3)?.as_deref(), Some(&b"abc"[..]));
        Ok(())
    }
}
