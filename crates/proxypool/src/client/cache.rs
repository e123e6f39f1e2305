//! One HTTP client per proxy, built on first use and kept in a bounded cache.
//!
//! A reqwest client holds its connection pool to the proxy, so reusing it is what makes
//! keep-alive through proxies work; building one costs far more than a request on
//! loopback. The cache forgets clients of proxies that left the pool (or whose URL
//! changed) when it sees the pool's generation change, and evicts the least recently
//! used client when full.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::pool::ProxyPool;
use crate::proxy::{Proxy, ProxyId};

use super::config::ClientSettings;
use super::error::ClientError;
use super::exchange::scrub;

pub(crate) struct ClientCache {
    settings: Arc<ClientSettings>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    generation: u64,
    tick: u64,
    entries: HashMap<ProxyId, Entry>,
}

struct Entry {
    proxy: Arc<Proxy>,
    client: reqwest::Client,
    last_used: u64,
}

impl ClientCache {
    pub(crate) fn new(settings: Arc<ClientSettings>) -> Self {
        ClientCache { settings, state: Mutex::new(State::default()) }
    }

    /// The client for `proxy`, built if needed.
    pub(crate) fn client(&self, proxy: &Arc<Proxy>, pool: &ProxyPool) -> Result<reqwest::Client, ClientError> {
        {
            let mut state = self.lock();
            state.forget_departed(pool);
            state.tick += 1;
            let tick = state.tick;
            if let Some(entry) = state.entries.get_mut(proxy.id())
                && Arc::ptr_eq(&entry.proxy, proxy)
            {
                entry.last_used = tick;
                return Ok(entry.client.clone());
            }
        }
        // Built outside the lock: it takes milliseconds (TLS roots), and two requests
        // racing to build the same client only waste one build.
        let client = self.settings.build_client(proxy).map_err(|message| ClientError::ClientBuild {
            proxy: proxy.id().clone(),
            message: scrub(&message, proxy),
        })?;
        let mut state = self.lock();
        let tick = state.tick;
        state
            .entries
            .insert(proxy.id().clone(), Entry { proxy: proxy.clone(), client: client.clone(), last_used: tick });
        if state.entries.len() > self.settings.config.max_cached_clients
            && let Some(oldest) = state.entries.iter().min_by_key(|(_, e)| e.last_used).map(|(id, _)| id.clone())
        {
            state.entries.remove(&oldest);
        }
        Ok(client)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn forget_departed(&mut self, pool: &ProxyPool) {
        let generation = pool.generation();
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        self.entries.retain(|id, entry| pool.get(id.as_str()).is_some_and(|p| Arc::ptr_eq(&p, &entry.proxy)));
    }
}
