//! The escapes a hostile-input probe found in build roots and acceptance
//! systems, as one shell script: run where a source's unit test, its
//! `debian/rules` or a package's maintainer script runs, it tries each and
//! prints `PROBE REFUSED <what>: <why>` (so a test knows the attempt ran)
//! or `PROBE ESCAPED <what>`. What it reaches is also checked from the
//! host: the file it tries to leave in the host's /tmp must not exist.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// What the probe aims at on the host, kept alive for the test.
pub struct Targets {
    /// The store's signing key.
    pub secret: PathBuf,
    /// A file the probe tries to create in the host's /tmp.
    pub mark: PathBuf,
    host_process: Child,
    listener: TcpListener,
}

/// The escapes, one line each.
pub const ESCAPES: &[&str] = &[
    "double-chroot",
    "mknod-block-device",
    "read-store-key",
    "join-host-netns",
    "host-loopback",
];

impl Targets {
    pub fn new(store: &Path) -> Self {
        let secret = store.join("keys/secret.asc");
        assert!(secret.is_file(), "{} is missing", secret.display());
        let mark = std::env::temp_dir().join(format!("halo-escaped-{}", std::process::id()));
        let _ = std::fs::remove_file(&mark);
        let host_process = Command::new("sleep").arg("600").spawn().expect("sleep");
        let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
        Self {
            secret,
            mark,
            host_process,
            listener,
        }
    }

    /// The probe: a POSIX shell script using perl (Essential), nsenter
    /// (util-linux) and bash's /dev/tcp.
    pub fn script(&self) -> String {
        let port = self.listener.local_addr().expect("addr").port();
        let pid = self.host_process.id();
        let secret = self.secret.display();
        let mark = self.mark.display();
        format!(
            r#"set +e
t=$(mktemp -d)
try() {{
  what=$1; shift
  if "$@" >"$t/out" 2>"$t/err"; then echo "PROBE ESCAPED $what: $(head -c 300 "$t/out" | tr '\n' ' ')"
  else echo "PROBE REFUSED $what: $(head -c 300 "$t/err" | tr '\n' ' ')"; fi
}}
try double-chroot perl -e 'mkdir "/tmp/probe-x"; chroot "/tmp/probe-x" or die "chroot: $!\n"; chdir ".." for 1..64; chroot "." or die "chroot .: $!\n"; open(M, ">", "{mark}") and print M "escaped\n"; close M; open(F, "<", "{secret}") or die "no key after climbing out: $!\n"; print <F>'
try mknod-block-device mknod "$t/disk" b 8 0
try read-store-key cat "{secret}"
try join-host-netns nsenter --net=/proc/{pid}/ns/net true
try host-loopback bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'
echo x > "{mark}" 2>/dev/null
rm -rf "$t" /tmp/probe-x
exit 0
"#
        )
    }

    /// Asserts every escape ran and was refused in `output`, and that
    /// nothing reached the host.
    pub fn assert_refused(&self, output: &str) {
        for e in ESCAPES {
            let refused = format!("PROBE REFUSED {e}:");
            assert!(
                output.contains(&refused),
                "the probe's `{e}` did not run or was not refused:\n{output}"
            );
        }
        assert!(!output.contains("PROBE ESCAPED"), "{output}");
        assert!(!output.contains("BEGIN PGP"), "the key leaked:\n{output}");
        assert!(
            !self.mark.exists(),
            "the probe wrote {} on the host",
            self.mark.display()
        );
    }
}

impl Drop for Targets {
    fn drop(&mut self) {
        let _ = self.host_process.kill();
        let _ = self.host_process.wait();
        let _ = std::fs::remove_file(&self.mark);
    }
}
