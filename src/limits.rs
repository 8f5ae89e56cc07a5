//! Process limits a connection server needs: the open-file limit decides how many connections one
//! process can hold.
//!
//! At start the soft `RLIMIT_NOFILE` is raised to the hard limit (as nginx's
//! `worker_rlimit_nofile` or Go's runtime do), so a default soft limit of 1,024 does not cap the
//! server at a thousand clients. The hard limit is the operator's: see `tuning/`.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft open-file limit to the hard limit; returns the limit now in force (`None` =
/// unlimited).
pub fn raise_open_files() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return limit.current;
    }
    let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum,
        Err(e) => {
            tracing::warn!(error = %e, soft = limit.current.unwrap_or(u64::MAX), "could not raise the open-file limit");
            limit.current
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limit_reaches_the_hard_limit() {
        let in_force = raise_open_files();
        assert_eq!(in_force, getrlimit(Resource::Nofile).maximum);
        assert_eq!(getrlimit(Resource::Nofile).current, in_force);
    }
}
