//! The emitter's weight journal, kept in the store (one document per subnet), so it is as
//! durable as the results and travels with them.

use anyhow::{Context, Result};
use arena_chain::emit::{Journal, JournalStore};
use arena_store::Store;
use async_trait::async_trait;

pub struct StoreJournal<'a> {
    store: &'a dyn Store,
    key: String,
}

impl<'a> StoreJournal<'a> {
    pub fn new(store: &'a dyn Store, netuid: u16) -> Self {
        Self { store, key: format!("weight-journal/{netuid}") }
    }
}

#[async_trait]
impl JournalStore for StoreJournal<'_> {
    async fn load(&mut self) -> Result<Journal> {
        match self.store.get(&self.key).await? {
            None => Ok(Journal::default()),
            Some(text) => serde_json::from_str(&text).with_context(|| format!("the store's {}", self.key)),
        }
    }

    async fn save(&mut self, journal: &Journal) -> Result<()> {
        self.store.put(&self.key, &serde_json::to_string(journal)?, crate::now_ms()).await
    }
}
