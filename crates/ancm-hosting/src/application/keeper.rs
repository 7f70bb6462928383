//! What keeps an application's backends healthy between requests (protocol §8.34, §8.35): one
//! task per application probes the serving children, watches the recycling policies, and
//! recycles the application through the zero-downtime recycle of a web.config change
//! ([`Inner::switch_to`]) with the cause in the counters and the log.
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::{Generation, Inner};
use crate::config;
use crate::status::ExitCause;
use crate::supervisor::health::probe;
use crate::supervisor::recycle_policy::{memory_kib, scheduled_between};
use crate::supervisor::{LaunchSpec, Ready, Supervisor};

/// How often the policies are looked at when nothing asks for more often.
const TICK: Duration = Duration::from_secs(1);

/// How often the policies are looked at when a recycling policy is set.
const POLICY_TICK: Duration = Duration::from_millis(250);

/// The shortest tick.
const MIN_TICK: Duration = Duration::from_millis(10);

/// What the keeper remembers between ticks.
#[derive(Default)]
struct Watch {
    /// When the children are probed next.
    next_probe: Option<Instant>,
    /// Since when each child's memory (by pid) has been above the limit.
    memory_above: HashMap<u32, Instant>,
    /// When the schedule was last looked at, in seconds since the Unix epoch.
    schedule_seen: u64,
}

/// Runs until the application is shut down or dropped.
pub(super) async fn keep(app: Weak<Inner>) {
    let mut watch = Watch {
        schedule_seen: unix_now(),
        ..Watch::default()
    };
    loop {
        let tick = {
            let Some(inner) = app.upgrade() else { return };
            match &*inner.current() {
                Generation::Running { supervisor, .. } => tick_for(supervisor.spec()),
                Generation::Invalid { .. } => TICK,
            }
        };
        tokio::time::sleep(tick).await;
        let Some(inner) = app.upgrade() else { return };
        if inner.shutting_down.load(Ordering::Acquire) {
            return;
        }
        let generation = inner.current();
        let Generation::Running { supervisor, .. } = &*generation else {
            continue;
        };
        if inner.offline.is_offline() || supervisor.is_stopping() {
            continue;
        }
        if let Some(cause) = watch.due(supervisor).await {
            inner.recycle(&generation, cause).await;
            watch.memory_above.clear();
            watch.next_probe = None;
        }
    }
}

/// The keeper's period for a configuration.
fn tick_for(spec: &LaunchSpec) -> Duration {
    let mut tick = TICK;
    if spec.health.path.is_some() {
        tick = tick.min(spec.health.interval);
    }
    if spec.recycle.is_set() {
        tick = tick.min(POLICY_TICK);
    }
    tick.max(MIN_TICK)
}

impl Watch {
    /// Probes the children when due, then says whether a child is unhealthy or a policy
    /// asks for a recycle, and logs why.
    async fn due(&mut self, supervisor: &Supervisor) -> Option<ExitCause> {
        let spec = supervisor.spec();
        let serving = supervisor.serving();
        let schedule_from = std::mem::replace(&mut self.schedule_seen, unix_now());
        if serving.is_empty() {
            self.memory_above.clear();
            return None;
        }
        if let Some(path) = &spec.health.path {
            let now = Instant::now();
            if self.next_probe.is_none_or(|at| now >= at) {
                self.next_probe = Some(now + spec.health.interval);
                probe_all(&serving, path, spec).await;
            }
        }
        if let Some((slot, ready)) = serving.iter().find(|(_, r)| r.vitals().is_unhealthy()) {
            tracing::warn!(slot, pid = ready.pid(), cause = %ExitCause::Health, "recycling the application: a process is unhealthy");
            return Some(ExitCause::Health);
        }
        let policy = &spec.recycle;
        if let Some(limit) = policy.requests
            && let Some((slot, ready)) = serving.iter().find(|(_, r)| r.served() >= limit)
        {
            tracing::info!(slot, pid = ready.pid(), requests = ready.served(), limit, cause = %ExitCause::Requests, "recycling the application: a process served its recycle request count");
            return Some(ExitCause::Requests);
        }
        if let Some(time) = policy.periodic
            && let Some((slot, ready)) = serving.iter().find(|(_, r)| r.age() >= time)
        {
            tracing::info!(slot, pid = ready.pid(), limit_s = time.as_secs_f64(), cause = %ExitCause::Periodic, "recycling the application: a process ran for its recycle time");
            return Some(ExitCause::Periodic);
        }
        if let Some(limit) = policy.private_memory_kib
            && let Some(cause) = self.memory(&serving, limit, policy.memory_duration).await
        {
            return Some(cause);
        }
        if scheduled_between(&policy.schedule, schedule_from, self.schedule_seen) {
            tracing::info!(cause = %ExitCause::Schedule, "recycling the application: a scheduled recycle time (UTC) passed");
            return Some(ExitCause::Schedule);
        }
        None
    }

    /// Measures each child's memory; a recycle when one stayed above `limit` KiB for
    /// `duration`.
    async fn memory(
        &mut self,
        serving: &[(usize, Arc<Ready>)],
        limit: u64,
        duration: Duration,
    ) -> Option<ExitCause> {
        let pids: Vec<(usize, u32)> = serving.iter().map(|(s, r)| (*s, r.pid())).collect();
        let measured = tokio::task::spawn_blocking(move || {
            pids.into_iter()
                .map(|(slot, pid)| (slot, pid, memory_kib(pid)))
                .collect::<Vec<_>>()
        })
        .await
        .ok()?;
        let now = Instant::now();
        self.memory_above
            .retain(|pid, _| measured.iter().any(|(_, p, _)| p == pid));
        for (slot, pid, kib) in measured {
            let Some(kib) = kib.filter(|kib| *kib > limit) else {
                self.memory_above.remove(&pid);
                continue;
            };
            let since = *self.memory_above.entry(pid).or_insert(now);
            if now.duration_since(since) >= duration {
                tracing::info!(slot, pid, memory_kib = kib, limit_kib = limit, for_s = duration.as_secs_f64(), cause = %ExitCause::Memory, "recycling the application: a process's memory stayed above its limit");
                return Some(ExitCause::Memory);
            }
        }
        None
    }
}

/// Probes every serving child at once and records the outcomes.
async fn probe_all(serving: &[(usize, Arc<Ready>)], path: &str, spec: &LaunchSpec) {
    let health = &spec.health;
    let probes: Vec<_> = serving
        .iter()
        .map(|(slot, ready)| {
            let (slot, ready, path) = (*slot, Arc::clone(ready), path.to_owned());
            let (timeout, threshold) = (health.timeout, health.unhealthy_threshold);
            tokio::spawn(async move {
                let outcome = probe(ready.addr(), &path, ready.token(), timeout).await;
                let now_unhealthy = ready.vitals().probed(outcome.is_ok(), threshold);
                match outcome {
                    Ok(()) => {}
                    Err(reason) if now_unhealthy => {
                        tracing::warn!(slot, pid = ready.pid(), %reason, failures = threshold, cause = %ExitCause::Health, "the health probe failed too often in a row: the process is unhealthy and will be replaced");
                    }
                    Err(reason) => {
                        tracing::debug!(slot, pid = ready.pid(), %reason, "a health probe failed");
                    }
                }
            })
        })
        .collect();
    for p in probes {
        let _ = p.await;
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Inner {
    /// Recycles `from` (if it is still the generation in use) with the same configuration,
    /// for `cause`: new children, ready, switched to, the old ones stopped gracefully.
    async fn recycle(self: &Arc<Self>, from: &Arc<Generation>, cause: ExitCause) {
        let _guard = self.reload_lock.lock().await;
        if self.shutting_down.load(Ordering::Acquire) || !Arc::ptr_eq(from, &self.current()) {
            return;
        }
        let Generation::Running {
            config,
            supervisor,
            detailed,
        } = &**from
        else {
            return;
        };
        let spec = LaunchSpec::new(config, &self.context, &config::process_env);
        let generation = Arc::new(Generation::Running {
            config: config.clone(),
            supervisor: Supervisor::new(spec),
            detailed: *detailed,
        });
        self.switch_to(supervisor, generation, cause).await;
    }
}
