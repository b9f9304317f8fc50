//! What the machine allows, checked before a run: file descriptors and memory mappings.

/// Refuse a run whose users could not all hold a connection at once: a user alive keeps one
/// socket (more while it reconnects), and past the process's fd limit connects fail with
/// EMFILE in the middle of the run. The soft limit is raised to the hard one first.
pub(super) fn check_fds(users: u32) -> Result<(), String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit on a local struct.
    let limit = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Ok(());
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        lim.rlim_cur
    };
    // The process's own: the artifact, the state file, the target's listeners, stdio.
    let need = u64::from(users) + 256;
    if need <= limit {
        return Ok(());
    }
    Err(format!(
        "{users} concurrent users need about {need} file descriptors (a connection each), and \
         this process may open {limit}. Lower load.concurrency.max_concurrent_users, spread the \
         users over processes (run --segment I/N, one process a share), or raise the limit \
         (ulimit -n)"
    ))
}

/// Refuse a run whose users could not all be alive at once: each instance holds memory
/// mappings, and past `vm.max_map_count` instantiation fails with ENOMEM in the middle of the
/// run.
pub(super) fn check_mappings(
    users: u32,
    per_user: usize,
    now: usize,
    limit: usize,
) -> Result<(), String> {
    let need = now + per_user * users as usize;
    if need <= limit {
        return Ok(());
    }
    let fit = limit.saturating_sub(now) / per_user;
    Err(format!(
        "{users} concurrent users need about {need} memory mappings ({per_user} per user), and \
         vm.max_map_count is {limit}: about {fit} users fit. Lower \
         load.concurrency.max_concurrent_users, spread the users over processes (run \
         --segment I/N, one process a share), or raise the limit (sysctl -w \
         vm.max_map_count={})",
        need.next_power_of_two()
    ))
}
