//! EDGE: keeps Jenkins' own `agent.jar` connected. Remoting runs JVM code
//! the controller sends, so a native process cannot be the agent; it runs
//! `java -jar agent.jar -url .. -name .. -secret @FILE -webSocket -workDir
//! ..` as a child, restarts it with back-off when it exits, and stops it
//! when told to. The secret is passed as `@FILE` (a 0600 file), so it never
//! appears in `ps`; the child's environment carries no halo credentials.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How `agent.jar` is started.
#[derive(Debug, Clone)]
pub struct Launch {
    pub java: String,
    pub jar: PathBuf,
    pub url: String,
    pub name: String,
    pub secret_file: PathBuf,
    pub work_dir: PathBuf,
}

/// The arguments after `java` (no secret in them: `@FILE`).
pub fn plan_argv(l: &Launch) -> Vec<String> {
    vec![
        "-jar".into(),
        l.jar.display().to_string(),
        "-url".into(),
        l.url.clone(),
        "-name".into(),
        l.name.clone(),
        "-secret".into(),
        format!("@{}", l.secret_file.display()),
        "-webSocket".into(),
        "-workDir".into(),
        l.work_dir.display().to_string(),
    ]
}

/// The wait before restart number `n` (1, 2, 4 ... 60 s).
pub fn plan_backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.min(6)).min(Duration::from_secs(60))
}

/// Variables a child must not inherit.
const SECRET_VARS: [&str; 1] = ["HALO_JENKINS_TOKEN"];

fn spawn(l: &Launch) -> std::io::Result<Child> {
    let mut cmd = Command::new(&l.java);
    cmd.args(plan_argv(l)).current_dir(&l.work_dir);
    for v in SECRET_VARS {
        cmd.env_remove(v);
    }
    tracing::info!(argv = ?plan_argv(l), java = l.java, "starting agent.jar");
    cmd.spawn()
}

/// Sleeps `d` in small steps; false when `stop` was set meanwhile.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    !stop.load(Ordering::SeqCst)
}

/// Runs agent.jar until `stop` is set, restarting it when it exits. A run
/// that lasted over a minute resets the back-off.
pub fn supervise(l: &Launch, stop: &AtomicBool) {
    let mut failures = 0u32;
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let mut child = match spawn(l) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(
                    "cannot start {}: {e} (is Java installed? [jenkins.node] java)",
                    l.java
                );
                failures += 1;
                if !sleep_unless(stop, plan_backoff(failures)) {
                    break;
                }
                continue;
            }
        };
        let status = loop {
            if stop.load(Ordering::SeqCst) {
                crate::process::terminate(child.id());
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
                let _ = child.wait();
                tracing::info!("agent.jar stopped");
                return;
            }
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(_) => break None,
            }
        };
        if started.elapsed() > Duration::from_secs(60) {
            failures = 0;
        }
        failures += 1;
        let wait = plan_backoff(failures - 1);
        tracing::warn!(
            status = status.map_or("unknown".into(), |s| s.to_string()),
            "agent.jar exited; restarting in {} s",
            wait.as_secs()
        );
        if !sleep_unless(stop, wait) {
            break;
        }
    }
}

/// Writes the node secret to `path`, readable by its owner only from the
/// first byte.
pub fn save_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use fs_err::os::unix::fs::OpenOptionsExt;
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(secret.as_bytes())?;
    f.sync_all()?;
    fs_err::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_names_the_secret_file_not_the_secret() {
        let l = Launch {
            java: "java".into(),
            jar: "/w/agent.jar".into(),
            url: "http://j/".into(),
            name: "n".into(),
            secret_file: "/w/secret".into(),
            work_dir: "/w".into(),
        };
        assert_eq!(
            plan_argv(&l).join(" "),
            "-jar /w/agent.jar -url http://j/ -name n -secret @/w/secret -webSocket -workDir /w"
        );
    }

    #[test]
    fn backoff_doubles_to_a_minute() {
        let s: Vec<u64> = (0..9).map(|n| plan_backoff(n).as_secs()).collect();
        assert_eq!(s, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
