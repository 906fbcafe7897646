//! Test-only crash injection: when `HALO_FAILPOINT` names a point a writer
//! passes, the process aborts there, as a `kill -9` would stop it, with no
//! destructor run. The crash tests use it to hit each window between two
//! durable steps deterministically; random kills cover the rest.

/// Aborts the process if `HALO_FAILPOINT` equals `name`.
pub fn hit(name: &str) {
    if std::env::var_os("HALO_FAILPOINT").is_some_and(|v| v == name) {
        tracing::error!(failpoint = name, "failpoint hit: aborting");
        std::process::abort();
    }
}
