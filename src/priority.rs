//! CPU priority and placement of the HTTP workers. On a small machine a flood of API clients
//! can keep every core busy; the chain's actors must still get the CPU the moment a block
//! arrives. Linux keeps a nice value per thread, so each HTTP worker lowers its own priority
//! when it starts (`http.worker_nice`); the actors' threads keep theirs. Threads a worker
//! starts (SQLite's connection threads of the API's pool) inherit the worker's value.
//!
//! Optionally (`affinity.actors_cpu`) the actors' thread keeps one CPU for itself and the
//! threads it starts (its database connections), and the API's threads run on the others: a
//! block's work hops between the actor and its connection's thread a few dozen times, and on
//! one core those hops neither wait for another core to wake nor move the block's data
//! between the cores' caches (BENCHMARKS.md, twelfth round).

/// The calling thread's nice value (higher: less CPU when others want it).
pub fn current_nice() -> std::io::Result<i32> {
    #[cfg(unix)]
    {
        Ok(rustix::process::getpriority_process(None)?)
    }
    #[cfg(not(unix))]
    {
        Ok(0)
    }
}

/// Raises the calling thread's nice value by `steps` (at most to 19, the lowest priority);
/// returns the new value. Lowering a priority needs no privilege.
pub fn lower_current_thread(steps: u8) -> std::io::Result<i32> {
    let now = current_nice()?;
    if steps == 0 {
        return Ok(now);
    }
    let wanted = (now + i32::from(steps)).min(19);
    #[cfg(unix)]
    rustix::process::setpriority_process(None, wanted)?;
    current_nice()
}

/// The CPUs the calling thread may run on, in order.
pub fn allowed_cpus() -> std::io::Result<Vec<usize>> {
    #[cfg(target_os = "linux")]
    {
        use rustix::thread::CpuSet;
        let set = rustix::thread::sched_getaffinity(None)?;
        Ok((0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "CPU affinity is only set on Linux",
        ))
    }
}

/// Lets the calling thread (and the threads it starts from now on) run on `cpus` only.
pub fn pin_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::thread::CpuSet;
        let mut set = CpuSet::new();
        for &c in cpus {
            if c >= CpuSet::MAX_CPU {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("no CPU {c}"),
                ));
            }
            set.set(c);
        }
        Ok(rustix::thread::sched_setaffinity(None, &set)?)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpus;
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "CPU affinity is only set on Linux",
        ))
    }
}

/// Keeps CPU `cpu` for the calling thread (the actors' one) and every thread it starts from
/// now on, and returns the CPUs left to the API's threads ([`ApiPlacement`]). Changes nothing
/// and says why when it cannot: `cpu` is not one this process may use, or it is the only one.
pub fn reserve_for_actors(cpu: usize) -> Result<Vec<usize>, String> {
    let allowed = allowed_cpus().map_err(|e| format!("cannot read the CPUs allowed: {e}"))?;
    if !allowed.contains(&cpu) {
        return Err(format!(
            "CPU {cpu} is not one this process may run on ({allowed:?})"
        ));
    }
    let others: Vec<usize> = allowed.into_iter().filter(|&c| c != cpu).collect();
    if others.is_empty() {
        return Err(format!(
            "CPU {cpu} is the only one this process may run on: nothing to keep apart"
        ));
    }
    pin_current_thread(&[cpu]).map_err(|e| format!("cannot keep CPU {cpu}: {e}"))?;
    Ok(others)
}

/// Where the API's threads (HTTP workers, the API's SQLite connections) run: at a priority
/// lowered by `nice` steps and, when the actors keep a CPU of their own, on the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiPlacement {
    /// Nice steps below the actors (`http.worker_nice`).
    pub nice: u8,
    /// The CPUs left by [`reserve_for_actors`]; `None`: wherever the kernel likes.
    pub cpus: Option<Vec<usize>>,
}

impl ApiPlacement {
    /// Moves the calling thread there; returns its nice value.
    pub fn enter(&self) -> std::io::Result<i32> {
        if let Some(cpus) = &self.cpus {
            pin_current_thread(cpus)?;
        }
        lower_current_thread(self.nice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_lowers_its_own_priority_and_no_other() {
        let before = current_nice().unwrap();
        let lowered = std::thread::spawn(|| {
            let start = current_nice().unwrap();
            let after = lower_current_thread(5).unwrap();
            (start, after, current_nice().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(lowered.1, (lowered.0 + 5).min(19));
        assert_eq!(lowered.2, lowered.1, "the value read back");
        assert_eq!(
            current_nice().unwrap(),
            before,
            "the spawning thread is unchanged"
        );
        // Zero steps change nothing.
        assert_eq!(lower_current_thread(0).unwrap(), before);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_actors_keep_a_cpu_and_the_api_runs_on_the_others() {
        let all = allowed_cpus().unwrap();
        assert!(!all.is_empty());
        let cpu = *all.last().unwrap();
        let (kept, started, api, placed) = std::thread::spawn(move || {
            let api = reserve_for_actors(cpu);
            let kept = allowed_cpus().unwrap();
            // A thread started now inherits the reservation; an API thread leaves it.
            let started = std::thread::spawn(|| allowed_cpus().unwrap())
                .join()
                .unwrap();
            let placed = api.clone().ok().map(|cpus| {
                std::thread::spawn(move || {
                    let nice = ApiPlacement {
                        nice: 3,
                        cpus: Some(cpus),
                    }
                    .enter()
                    .unwrap();
                    (allowed_cpus().unwrap(), nice)
                })
                .join()
                .unwrap()
            });
            (kept, started, api, placed)
        })
        .join()
        .unwrap();
        if all.len() == 1 {
            let refused = api.unwrap_err();
            assert!(refused.contains("the only one"), "{refused}");
            assert_eq!(kept, all, "nothing changed");
            return;
        }
        let others: Vec<usize> = all.iter().copied().filter(|&c| c != cpu).collect();
        assert_eq!(api.unwrap(), others);
        assert_eq!(kept, vec![cpu]);
        assert_eq!(started, vec![cpu]);
        let (placed, nice) = placed.unwrap();
        assert_eq!(placed, others);
        assert_eq!(nice, (current_nice().unwrap() + 3).min(19));
        // This thread was never moved.
        assert_eq!(allowed_cpus().unwrap(), all);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_cpu_the_process_may_not_use_is_refused_and_changes_nothing() {
        let all = allowed_cpus().unwrap();
        let missing = (0..rustix::thread::CpuSet::MAX_CPU)
            .find(|c| !all.contains(c))
            .unwrap();
        let (refused, after) =
            std::thread::spawn(move || (reserve_for_actors(missing), allowed_cpus().unwrap()))
                .join()
                .unwrap();
        let refused = refused.unwrap_err();
        assert!(
            refused.contains(&format!("CPU {missing} is not one")),
            "{refused}"
        );
        assert_eq!(after, all);
    }
}
