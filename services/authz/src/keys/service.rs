use std::sync::Arc;

use arc_swap::ArcSwap;
use audit::{Action, Actor, AuditEvent, TargetKind};
use issuer::lifecycle::{Change, Policy, plan};
use issuer::{Algorithm, Clock, Kek, KeyRecord, KeyRing, KeyState, PrivateKey};
use runtime::Shutdown;
use storage::Database;
use tracing::instrument;

use super::repo;
use crate::AuthzError;
use crate::config::KeysConfig;

/// The signing keys of this replica.
///
/// - [`KeyStore::ring`] is what request handlers use: lock-free, no I/O.
/// - [`KeyStore::maintain`] applies the lifecycle plan to the database and reloads; it runs
///   at start and every `keys.check_interval` ([`KeyStore::spawn_maintenance`]). Several
///   replicas may run it at once: they compute the same plan and creation is decided by the
///   `(alg, generation)` unique constraint.
pub struct KeyStore {
    db: Database,
    kek: Arc<Kek>,
    policy: Policy,
    rsa_bits: u32,
    clock: Arc<dyn Clock>,
    ring: ArcSwap<KeyRing>,
    loaded: tokio::sync::Mutex<Option<Vec<KeyRecord>>>,
}

impl KeyStore {
    /// Opens the store and brings keys up to date: creates first keys on an empty database,
    /// and fails (no keys served) if any stored key does not decrypt with `kek`.
    pub async fn open(
        db: Database,
        config: &KeysConfig,
        kek: Kek,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, AuthzError> {
        let store = Arc::new(Self {
            db,
            kek: Arc::new(kek),
            policy: config.policy(),
            rsa_bits: config.rsa_bits,
            clock,
            ring: ArcSwap::from_pointee(KeyRing::empty()),
            loaded: tokio::sync::Mutex::new(None),
        });
        store.maintain().await?;
        Ok(store)
    }

    /// The current snapshot of keys.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.load_full()
    }

    /// The store's clock, in Unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// One lifecycle step: plan, apply, reload the ring if anything changed.
    #[instrument(skip_all)]
    pub async fn maintain(&self) -> Result<(), AuthzError> {
        let mut loaded = self.loaded.lock().await;
        let now = self.clock.now();
        let mut records = repo::all(&self.db).await?;
        let changes = plan(&records, &self.policy, now);
        if !changes.is_empty() {
            for change in changes {
                self.apply(change, now).await?;
            }
            records = repo::all(&self.db).await?;
        }
        if loaded.as_ref() != Some(&records) {
            let kek_ring = self.build_ring(records.clone(), now).await?;
            tracing::info!(kids = ?kek_ring.kids(), "signing keys loaded");
            self.ring.store(Arc::new(kek_ring));
            *loaded = Some(records.clone());
        }
        for alg in Algorithm::ALL {
            if let Some(current) = records
                .iter()
                .filter(|r| r.alg == alg && r.state == KeyState::Current)
                .max_by_key(|r| r.activates_at)
            {
                metrics::gauge!("signing_key_age_seconds", "alg" => alg.as_str())
                    .set((now - current.activates_at) as f64);
            }
        }
        Ok(())
    }

    async fn build_ring(&self, records: Vec<KeyRecord>, now: i64) -> Result<KeyRing, AuthzError> {
        // Parsing RSA keys takes milliseconds: keep it off the async workers.
        let kek = Arc::clone(&self.kek);
        tokio::task::spawn_blocking(move || KeyRing::build(&records, &kek, now))
            .await
            .map_err(|e| AuthzError::Task(e.to_string()))?
            .map_err(AuthzError::from)
    }

    async fn apply(&self, change: Change, now: i64) -> Result<(), AuthzError> {
        match change {
            Change::Create {
                alg,
                generation,
                activates_at,
            } => {
                let bits = self.rsa_bits;
                let key = tokio::task::spawn_blocking(move || PrivateKey::generate(alg, bits))
                    .await
                    .map_err(|e| AuthzError::Task(e.to_string()))??;
                let record = self.record_for(&key, generation, activates_at, now)?;
                // audit trail (issue 18): the scheduled rotation, in the insert's transaction.
                let event = key_event(Action::KeyRotated, &record.kid, now).note("automatic");
                if repo::insert(&self.db, &record, Some(&event)).await? {
                    tracing::info!(kid = %record.kid, %alg, generation, activates_at, "signing key created");
                    event.log();
                }
            }
            Change::Update {
                kid,
                state,
                activates_at,
                retired_at,
                remove_after,
            } => {
                let event = (state == KeyState::Retired)
                    .then(|| key_event(Action::KeyRetired, &kid, now).note("automatic"));
                let n = repo::update(
                    &self.db,
                    &kid,
                    state,
                    (activates_at, retired_at, remove_after),
                    event.as_ref(),
                )
                .await?;
                tracing::info!(%kid, state = state.as_str(), "signing key state");
                if n == 1
                    && let Some(event) = &event
                {
                    event.log();
                }
            }
            Change::Delete { kid } => {
                repo::delete(&self.db, &kid).await?;
                tracing::info!(%kid, "signing key removed");
            }
        }
        Ok(())
    }

    fn record_for(
        &self,
        key: &PrivateKey,
        generation: i64,
        activates_at: i64,
        now: i64,
    ) -> Result<KeyRecord, AuthzError> {
        Ok(KeyRecord {
            kid: key.kid().to_owned(),
            alg: key.alg(),
            generation,
            state: if activates_at <= now {
                KeyState::Current
            } else {
                KeyState::Next
            },
            public_jwk: serde_json::to_string(key.public_jwk())
                .map_err(|e| AuthzError::Keys(issuer::IssuerError::Key(e.to_string())))?,
            private_key: self.kek.seal(key.kid(), key.alg(), key.pkcs8_der())?,
            created_at: now,
            activates_at,
            retired_at: None,
            remove_after: None,
        })
    }

    /// Runs [`KeyStore::maintain`] every `interval` until shutdown; failures are logged and
    /// retried at the next tick, never fatal (the last good ring keeps serving).
    pub fn spawn_maintenance(self: &Arc<Self>, interval: std::time::Duration, shutdown: Shutdown) {
        let store = Arc::clone(self);
        runtime::spawn_periodic(
            "signing key maintenance",
            interval,
            runtime::FirstRun::AfterInterval,
            shutdown.waiter(),
            move || {
                let store = Arc::clone(&store);
                async move {
                    if let Err(e) = store.maintain().await {
                        tracing::error!(error = %e, "signing key maintenance failed");
                    }
                }
            },
        );
    }

    /// Every stored key.
    pub async fn list(&self) -> Result<Vec<KeyRecord>, AuthzError> {
        Ok(repo::all(&self.db).await?)
    }

    /// Stores `key` as the next key of its algorithm: published now, signing after
    /// `keys.publish_ahead` (or at once with `activate_now`, skipping the cache grace).
    #[instrument(skip_all)]
    pub async fn add(&self, key: PrivateKey, activate_now: bool) -> Result<KeyRecord, AuthzError> {
        Ok(self.add_audited(key, activate_now, None).await?.0)
    }

    /// [`KeyStore::add`] with `event`, its target set to the new key, appended to the audit
    /// trail in the insert's transaction (issue 18); returns the event as committed, to be
    /// logged.
    #[instrument(skip_all)]
    pub async fn add_audited(
        &self,
        key: PrivateKey,
        activate_now: bool,
        event: Option<AuditEvent>,
    ) -> Result<(KeyRecord, Option<AuditEvent>), AuthzError> {
        let now = self.clock.now();
        let records = repo::all(&self.db).await?;
        if records.iter().any(|r| r.kid == key.kid()) {
            return Err(AuthzError::Conflict(format!(
                "key {} is already stored",
                key.kid()
            )));
        }
        let generation = records
            .iter()
            .filter(|r| r.alg == key.alg())
            .map(|r| r.generation)
            .max()
            .unwrap_or(0)
            + 1;
        let activates_at = if activate_now {
            now
        } else {
            now + self.policy.publish_ahead
        };
        let record = self.record_for(&key, generation, activates_at, now)?;
        let event = event.map(|e| e.target(TargetKind::Key, &record.kid));
        if !repo::insert(&self.db, &record, event.as_ref()).await? {
            return Err(AuthzError::Conflict(
                "another replica created a key of this algorithm at the same moment; retry".into(),
            ));
        }
        self.maintain().await?;
        Ok((record, event))
    }

    /// Generates and stores a new key of `alg` (see [`KeyStore::add`]).
    pub async fn generate(
        &self,
        alg: Algorithm,
        activate_now: bool,
    ) -> Result<KeyRecord, AuthzError> {
        Ok(self.generate_audited(alg, activate_now, None).await?.0)
    }

    /// [`KeyStore::generate`] with `event` committed with the key (see
    /// [`KeyStore::add_audited`]).
    pub async fn generate_audited(
        &self,
        alg: Algorithm,
        activate_now: bool,
        event: Option<AuditEvent>,
    ) -> Result<(KeyRecord, Option<AuditEvent>), AuthzError> {
        let bits = self.rsa_bits;
        let key = tokio::task::spawn_blocking(move || PrivateKey::generate(alg, bits))
            .await
            .map_err(|e| AuthzError::Task(e.to_string()))??;
        self.add_audited(key, activate_now, event).await
    }

    /// Stops `kid` signing now; it stays published for `keys.retired_retention`. If it was
    /// the only key of a configured algorithm, the next maintenance step gives that
    /// algorithm a new key.
    pub async fn retire(&self, kid: &str) -> Result<KeyRecord, AuthzError> {
        self.retire_audited(kid, None).await
    }

    /// [`KeyStore::retire`] with `event` appended to the audit trail in the update's
    /// transaction (issue 18).
    pub async fn retire_audited(
        &self,
        kid: &str,
        event: Option<&AuditEvent>,
    ) -> Result<KeyRecord, AuthzError> {
        let now = self.clock.now();
        let record = repo::all(&self.db)
            .await?
            .into_iter()
            .find(|r| r.kid == kid)
            .ok_or_else(|| AuthzError::NotFound(format!("no key with kid {kid}")))?;
        if record.retired_at.is_some_and(|t| t <= now) {
            return Err(AuthzError::Conflict(format!(
                "key {kid} is already retired"
            )));
        }
        repo::update(
            &self.db,
            kid,
            KeyState::Retired,
            (
                record.activates_at.min(now),
                Some(now),
                Some(now + self.policy.retired_retention),
            ),
            event,
        )
        .await?;
        self.maintain().await?;
        Ok(repo::all(&self.db)
            .await?
            .into_iter()
            .find(|r| r.kid == kid)
            .unwrap_or(record))
    }
}

/// Every stored key as it is in the database (no decryption, no lifecycle step).
pub async fn stored(db: &Database) -> Result<Vec<KeyRecord>, AuthzError> {
    Ok(repo::all(db).await?)
}

// audit trail (issue 18, idpadmin)
/// A key lifecycle event by the service itself at `now` (Unix seconds).
fn key_event(action: Action, kid: &str, now: i64) -> AuditEvent {
    AuditEvent::new(Actor::System, action)
        .at(now.saturating_mul(1000))
        .target(TargetKind::Key, kid)
}
