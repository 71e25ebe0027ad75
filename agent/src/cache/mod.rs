//! Answers kept so the directory is asked as little as possible: in memory for `[cache] ttl`
//! (`memory`), and on disk for offline use and restarts ([`store`], the agent's only redb
//! code), written in batches off the request path ([`writer`]).

mod memory;
pub mod store;
pub mod writer;

#[cfg(test)]
mod test_support;

pub use memory::{Cache, Keep};
pub use store::{Listing, Store, StoreError, StoreKey, StoreSummary, Stored, Write};
pub use writer::{StoreWriter, WriterHandle};
