//! CPU priority of the HTTP workers. On a small machine a flood of API clients can keep every
//! core busy; the chain's actors must still get the CPU the moment a block arrives. Linux
//! keeps a nice value per thread, so each HTTP worker lowers its own priority when it starts
//! (`http.worker_nice`); the actors' threads keep theirs. Threads a worker starts (SQLite's
//! connection threads of the API's pool) inherit the worker's value.

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
}
