//! The command line, as clap derive types only. Names and flags are a
//! contract (docs and other tools rely on them): add, do not rename.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A reason recorded in a history: one line, no control characters (a
/// newline would break the one-line history output; escapes would reach
/// the terminal of whoever reads it).
fn one_line_text(s: &str) -> Result<String, String> {
    if s.chars().any(char::is_control) {
        return Err("must be one line without control characters".into());
    }
    Ok(s.to_string())
}

/// A number of seconds between `min` and `max`, finite: `inf`, `NaN`,
/// `1e300` or a negative number is a usage error here, where a
/// `Duration` made of it later would panic.
fn seconds_between(s: &str, min: f64, max: f64, unit: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of {unit}"))?;
    if !v.is_finite() || v < min || v > max {
        return Err(format!("must be a number of {unit} from {min} to {max}"));
    }
    Ok(v)
}

/// `--wait-timeout`: 0 (do not wait) to a year of seconds.
fn wait_seconds(s: &str) -> Result<f64, String> {
    seconds_between(s, 0.0, 31_536_000.0, "seconds")
}

/// `jenkins trigger --timeout`: up to a week of minutes, more than 0.
fn trigger_minutes(s: &str) -> Result<f64, String> {
    let v = seconds_between(s, 0.0, 10_080.0, "minutes")?;
    if v == 0.0 {
        return Err("must be more than 0 minutes".into());
    }
    Ok(v)
}

#[derive(Debug, Parser)]
#[command(
    name = "halo",
    version,
    about = "rustedhalo: APT snapshots, channels and promotion",
    long_about = "rustedhalo keeps APT packages in a content-addressed store, freezes them into \
immutable, signed snapshots and moves snapshots through channels \
(trusty-unstable -> trusty-testing -> trusty).\n\nExample:\n  halo --store /srv/halo init\n  \
halo --store /srv/halo import --archive rustedhalo --dist trusty --component main pkg_1.0_amd64.deb\n  \
halo --store /srv/halo snapshot create\n  halo --store /srv/halo promote --to trusty-unstable --snapshot <ID>"
)]
pub struct Cli {
    /// The store directory.
    #[arg(long, global = true, env = "HALO_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// The configuration file (mirrors, downloads); default: STORE/halo.toml.
    #[arg(long, global = true, env = "HALO_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Machine-readable JSON on stdout (list, show, diff, history and reports).
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr: -v progress, -vv our debug detail, -vvv the
    /// libraries too. RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Give up after waiting this many seconds for another writer (exit 75);
    /// default: wait as long as it takes.
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        env = "HALO_WAIT_TIMEOUT",
        value_parser = wait_seconds
    )]
    pub wait_timeout: Option<f64>,
    /// Remote mode: reach the store through `halo serve` at this URL
    /// (build, accept, gate, agent and import only); builds and tests run here.
    #[arg(long, global = true, env = "HALO_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// With --server: the file holding the API token (else $HALO_TOKEN).
    #[arg(long, global = true, env = "HALO_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// With --server: trust this PEM certificate (a private CA or the
    /// server's own) besides the system's roots.
    #[arg(long, global = true, env = "HALO_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// With --server: this host's directory for work, build roots, the
    /// agent's records and downloaded trees; default /var/tmp/halo.
    #[arg(long, global = true, env = "HALO_WORK_DIR", value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a store, the default channels and a signing key.
    #[command(
        long_about = "Create a store: directories, the channels trusty-unstable, trusty-testing \
and trusty, and an OpenPGP signing key (Ed25519, or RSA 4096 with --key-algorithm rsa4096 for clients whose \
gpgv is GnuPG 1.4, as trusty's) unless --key gives one. The public key is written \
to STORE/keys/repo.gpg (for apt's signed-by=) and STORE/keys/repo.asc.\n\nExample:\n  halo --store /srv/halo init\n  \
halo --store /srv/halo init --key release-key.asc\n  halo --store /srv/halo init --key-algorithm rsa4096"
    )]
    Init(InitArgs),
    /// Add .deb, .dsc or .changes files to an archive's working state.
    #[command(
        long_about = "Add packages to the working state of one archive, dist and component. \
A .dsc brings the files it lists, a .changes every file it lists (each checksum verified). \
Re-importing identical content is a no-op; a different file under the same name, version and \
architecture is refused.\n\nExample:\n  halo import --archive rustedhalo --dist trusty --component main build/*.changes"
    )]
    Import(ImportArgs),
    /// The signing keys: list them, add a new one alongside, retire an old one.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Take packages out of an archive's working state (snapshots keep theirs).
    #[command(
        long_about = "Take packages out of the working state of one archive and dist (every \
component, or --component): PKG alone is every version and architecture of the binaries called \
PKG and of the source package PKG; PKG=VERSION one version; /ARCH one architecture ('source': \
the source package only). Binaries built from a source of another name are not removed: name them \
too. Every PKG must match something, or nothing is removed. The next snapshot reflects it; \
snapshots made before keep their packages. From a mirror's archive only what the mirror's \
`packages` setting (in the configuration) leaves out: anything else would come back on the next \
update.\n\nExample:\n  halo remove --archive rustedhalo --dist \
trusty hello=1.0-1\n  halo remove --archive rustedhalo --dist trusty --component main libfoo1/i386 foo"
    )]
    Remove(RemoveArgs),
    /// Copy packages from one archive/dist to another (entries only: no bytes copied).
    #[command(
        long_about = "Copy packages from ARCHIVE/DIST to ARCHIVE2/DIST2, each into the component \
of the same name (every component of the source, or --component). PKG is the newest version of \
each architecture (dpkg order) and the source package PKG; PKG=VERSION that version. With \
--with-deps, the Depends and Pre-Depends of the copied binaries are resolved within the source \
dist (the newest satisfying version, first satisfiable alternative) and copied too. Pool files \
are shared, so nothing is copied but entries. A package the target holds with other content, and \
a mirror's archive as the target, are refused.\n\nExample:\n  halo copy --from ubuntu/trusty \
--to rustedhalo/trusty --with-deps ceph=0.94.1-1\n  halo copy --from rustedhalo/trusty --to \
rustedhalo/xenial hello"
    )]
    Copy(CopyArgs),
    /// List the packages of an archive's working state.
    #[command(
        long_about = "One line per package in the working state of ARCHIVE (every dist, or \
--dist): dist/component, name, version, architecture ('source' for source packages). PATTERN is a \
shell-style pattern over names (quote it).\n\nExample:\n  halo list --archive rustedhalo --dist \
trusty 'lib*'\n  halo list --archive rustedhalo --json"
    )]
    List(ListArgs),
    /// Every version of a package: archives, snapshots and channels holding it.
    #[command(
        long_about = "Every version of the binaries and source package called PKG: per archive, \
dist and component, whether the working state holds it, which snapshots hold it and which \
channels point at one of those. Reads every snapshot manifest.\n\nExample:\n  halo show hello\n  \
halo show hello --json"
    )]
    Show(ShowArgs),
    /// Create, list, show and compare snapshots.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Point a channel at a snapshot (one atomic pointer change).
    #[command(
        long_about = "Point a channel at a snapshot, or at the snapshot another channel points \
at. With --expect the move is a compare-and-swap: it is refused when the channel does not point at \
the expected snapshot (use 'none' for an empty channel).\n\nExample:\n  \
halo promote --to trusty-testing --from trusty-unstable --reason 'acceptance run 42'\n  \
halo promote --to trusty --snapshot 20261127T025247.123Z --expect 20261120T100000.000Z"
    )]
    Promote(PromoteArgs),
    /// List channels, show their history, roll one back.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Write a snapshot or channel as a plain APT tree (hosts without FUSE).
    #[command(
        long_about = "Write the APT tree of a snapshot (or of the snapshot a channel points at) \
to DIR/<archive>/{dists,pool}, hard-linking pool files where possible. DIR must be new or empty.\n\n\
Example:\n  halo export --channel trusty /srv/www/apt"
    )]
    Export(ExportArgs),
    /// Check every blob, manifest and channel; exit 0 only when the store is sound.
    #[command(
        long_about = "Re-hash every blob and check every snapshot manifest, component state, \
Release and signature, the working state, every channel and its history, and the secret key's \
permissions. Prints each problem on its own line.\n\nExit status: 0 sound, 2 damaged (as every \
command reports damage), 1 a usage error.\n\nExample:\n  halo fsck --json"
    )]
    Fsck,
    /// Remove unreferenced blobs, temp files and (optionally) old snapshots.
    #[command(
        long_about = "Remove temp files left by interrupted writers and blobs that neither the \
working state nor any kept snapshot needs. With --keep-snapshots N, snapshots older than the newest \
N are deleted unless a channel points at them.\n\nExample:\n  halo gc --keep-snapshots 100"
    )]
    Gc(GcArgs),
    /// Refresh upstream APT mirrors from the configuration.
    #[command(subcommand)]
    Mirror(MirrorCommand),
    /// Build monitored sources (or a tree) and publish them to their channel.
    #[command(
        long_about = "Build configured [[source]]s (or the Debian source tree at --path): fetch \
the branch head with git, check build dependencies, run the source's unit tests, \
dpkg-buildpackage -us -uc (on the host, or in a clean root made from a channel of the store when \
the source or [build] sets `root`: its build dependencies installed there by apt from the \
channel), import the .changes into the source's archive, make a snapshot and \
move the source's channel to it (compare-and-swap). A commit already built is skipped unless \
--force; a commit whose build or tests failed is recorded and skipped until the branch moves, \
unless --retry (`halo sources status` says `failed at <commit>`). A held channel refuses the \
build. Build output streams to stderr as it runs.\n\nExit status: 0 built and published (or \
skipped), 1 the tests or the build failed (nothing published), 2 setup error (git unreachable, \
build dependencies missing, bad configuration).\n\nExample:\n  halo build puppet-rjil --junit \
build-junit.xml\n  halo build --all\n  halo build --path ./halo-hello --channel trusty-unstable"
    )]
    Build(BuildArgs),
    /// The acceptance step: freeze testing, run the tests, promote what passed to stable.
    #[command(
        long_about = "Freeze: point testing at the snapshot --from points at (or --snapshot) \
and hold a lease on testing for the run, so nothing else moves it. Test: run each --test \
NAME=COMMAND and each [[acceptance.test]] with sh -c, with HALO_SNAPSHOT, HALO_CHANNEL, HALO_STORE, \
HALO_KEYRING and HALO_REPO (an APT tree of the frozen snapshot) in the environment. Decide: when \
every test passed, move stable to exactly the tested snapshot (only if testing still points at \
it); else leave stable alone. Every step is recorded in the channel histories and \
STORE/acceptance/runs.jsonl, with the names of the checks that ran.\n\nA promoting run runs at \
least every configured check: every [[acceptance.test]], and every [[acceptance.system]] built \
from scratch with mmdebstrap from the frozen snapshot alone, its packages installed with apt, \
and its tests run inside it (docs/acceptance.md). --test adds tests to the configured ones (it \
cannot replace one); --systems changes nothing here and --system NAME is refused (halo gate --system NAME tests one). --status shows the lease on testing and the latest runs' events.\n\nExit status: 0 passed and promoted, 1 a test failed (nothing \
promoted), 2 infrastructure (lease held by another run, bad configuration, a channel moved \
under the run).\n\nExample:\n  halo accept --snapshot \"$SNAPSHOT\" --junit accept-junit.xml\n  \
halo accept --test 'smoke=apt-get -o Dir::Etc::SourceList=... update'\n  \
halo accept --status"
    )]
    Accept(AcceptArgs),
    /// Run the acceptance tests against a channel, without freezing or promoting.
    #[command(
        long_about = "The seed's gate tests: run the configured (or --test, which replace them) \
acceptance tests, and the systems asked for (--systems, --system NAME), against the snapshot a \
channel points at now (default trusty-unstable), with the same environment and reports as halo \
accept, but no lease, no freeze and no promotion.\n\nExit \
status: 0 passed, 1 a test failed, 2 infrastructure.\n\nExample:\n  halo gate --channel \
trusty-unstable --junit gate-junit.xml"
    )]
    Gate(GateArgs),
    /// Start a Jenkins job and follow it; show what Jenkins knows of this host.
    #[command(subcommand)]
    Jenkins(JenkinsCommand),
    /// The daemon: register with Jenkins, keep agent.jar connected, run the refresh cycle.
    #[command(
        long_about = "Registers this host as a Jenkins node ([jenkins.node]), learns its secret, \
downloads the controller's agent.jar and keeps `java -jar agent.jar ... -webSocket` running \
(restarted with back-off); a controller that does not answer is retried with back-off in the \
background and stops nothing local. Every [agent] interval_minutes (jittered; never two at once) \
it runs the cycle: update every mirror, build the sources whose head changed, make a snapshot \
when anything changed and move trusty-unstable to it, then hand a snapshot no acceptance run has \
judged yet to acceptance: start [jenkins] acceptance_job with SNAPSHOT=<id>, or (without \
[jenkins]) run the acceptance workflow itself with the configured tests and systems. A trigger \
that fails is made again by the next cycle. Each cycle prints one line naming every stage (failed \
builds, the verdict and failing testcases, whether stable moved and why), with --json one JSON \
object per line, and writes its JUnit to --junit or [agent] junit. SIGTERM stops it and \
agent.jar.\n\nExit status of --once: 0 the cycle ran and nothing failed, 1 acceptance rejected \
the snapshot or a source failed to build (the content's fault), 2 a step could not run (a mirror, \
the snapshot, a trigger, a store error), 75 another cycle was running.\n\nExample:\n  halo agent\n  \
halo agent --once --json --junit cycle-junit.xml    # one cycle, for cron or a Jenkins job"
    )]
    Agent(AgentArgs),
    /// Monitored sources: branch heads, last builds, what is due.
    #[command(subcommand)]
    Sources(SourcesCommand),
    /// Demo on an embedded default: build, import, snapshot, promote, export.
    #[command(
        long_about = "Make a store in DIR, build a few example packages with dpkg-deb, import \
them, snapshot, promote through trusty-unstable, trusty-testing and trusty, export each channel and \
print the sources.list line to use. Nothing external to set up.\n\nExample:\n  halo quickstart --dir ./quickstart"
    )]
    Quickstart(QuickstartArgs),
    /// One screen: channels, holds, the acceptance lease and verdict, sources, mirrors, Jenkins.
    #[command(
        long_about = "What the pipeline is doing, from the store and what the agent recorded \
in STORE/agent/: each channel with its snapshot and age (and whether it is gated or held), \
testing's lease and the run holding it, the last verdict and why stable did or did not move, \
the last cycle and the stage a running one is in, each [[source]] (head, last build, due), each \
mirror (last refresh, upstream Release date, last error) and the Jenkins controller as the \
agent last reached it. Reads only; sources are asked for their head with git ls-remote.\n\n\
Example:\n  halo status\n  halo status --json"
    )]
    Status,
    /// Serve the APT trees, the JSON API and the pipeline page over HTTP(S).
    #[command(
        long_about = "Serve, from the store's host: the APT trees of every channel and snapshot at the mount's paths (/channels/<c>/<archive>/..., /snapshots/<id>/<archive>/...), byte for byte what the mount shows, with ETag, Last-Modified, Range and cache headers (pool and by-hash files immutable, InRelease re-asked); the JSON API under /api/v1 (docs/api.md: reads need nothing, writes a token from `halo token add`); and the pipeline page at /. TLS with --tls-cert and --tls-key (PEM), else plain HTTP (put it behind a TLS proxy). Runs until SIGINT or SIGTERM.\n\n\
Example:\n  halo serve --listen 0.0.0.0:8080\n  halo serve --listen [::]:8443 --tls-cert \
/etc/halo/cert.pem --tls-key /etc/halo/key.pem"
    )]
    Serve(ServeArgs),
    /// API tokens of `halo serve`: add (shown once), list, remove.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// The kinds of signing key halo generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyAlgorithmArg {
    /// EdDSA (Ed25519), v4: apt with gpgv 2.1 or later (xenial's gpgv2, bionic onwards).
    Ed25519,
    /// RSA 4096, v4: also clients whose gpgv is GnuPG 1.4 (trusty, xenial).
    Rsa4096,
}

impl From<KeyAlgorithmArg> for repofs::sign::KeyAlgorithm {
    fn from(a: KeyAlgorithmArg) -> Self {
        match a {
            KeyAlgorithmArg::Ed25519 => repofs::sign::KeyAlgorithm::Ed25519,
            KeyAlgorithmArg::Rsa4096 => repofs::sign::KeyAlgorithm::Rsa4096,
        }
    }
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Use this OpenPGP secret key (armored or binary, unprotected) instead of generating one.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The kind of key to generate: rsa4096 for clients with GnuPG 1.4's gpgv (trusty).
    #[arg(long, value_enum, default_value = "ed25519", conflicts_with = "key")]
    pub key_algorithm: KeyAlgorithmArg,
    /// Origin and Label of the Release files.
    #[arg(long, default_value = "rustedhalo")]
    pub origin: String,
    /// Architectures every dist lists (packages add their own).
    #[arg(long, value_delimiter = ',', default_value = "amd64")]
    pub architectures: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[arg(long)]
    pub archive: String,
    #[arg(long)]
    pub dist: String,
    #[arg(long)]
    pub component: String,
    /// .deb, .udeb, .dsc or .changes files.
    #[arg(value_name = "FILE", required_unless_present = "files_from")]
    pub files: Vec<PathBuf>,
    /// Also import the files listed in LIST, one path per line ('-': stdin);
    /// for batches too large for a command line.
    #[arg(long, value_name = "LIST")]
    pub files_from: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// The signing keys (each signs every Release) and the retired ones.
    List,
    /// Add a new signing key; both old and new sign until the old one is retired.
    #[command(
        long_about = "Generate a new signing key (or take --key FILE) and sign every Release \
with it as well as with the keys that sign now, as Debian does when it rolls its archive keys. \
keys/repo.gpg and keys/repo.asc then hold every signing key: give them to the clients. The next \
snapshot is signed by every key (even with nothing else changed); promote it. Once every client \
has the new keyring and every channel points at a snapshot the new key signed, retire the old \
key. The default algorithm is the newest key's.\n\nExample:\n  halo key rotate --key-algorithm \
rsa4096\n  ID=$(halo snapshot create | tail -n1) && halo promote --to trusty-unstable --snapshot \"$ID\""
    )]
    Rotate {
        /// The kind of key to generate (default: the newest key's).
        #[arg(long, value_enum)]
        key_algorithm: Option<KeyAlgorithmArg>,
        /// Use this OpenPGP secret key (armored or binary, unprotected) instead.
        #[arg(long, value_name = "FILE", conflicts_with = "key_algorithm")]
        key: Option<PathBuf>,
    },
    /// Stop signing with a key (the end of a rotation).
    #[command(
        long_about = "Stop signing with the key FINGERPRINT names (its fingerprint or long key \
id) and drop it from keys/repo.gpg and keys/repo.asc; its public key moves to keys/retired.gpg \
(fsck still checks the snapshots it signed). Refused while a channel points at a snapshot no \
remaining key signed, and for the last key.\n\nExample:\n  halo key retire \
0123456789ABCDEF0123456789ABCDEF01234567"
    )]
    Retire {
        /// The key's fingerprint (or its last 16 hex digits).
        fingerprint: String,
    },
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[arg(long)]
    pub archive: String,
    #[arg(long)]
    pub dist: String,
    /// Only this component (default: every component of the dist).
    #[arg(long)]
    pub component: Option<String>,
    /// PKG, PKG=VERSION, PKG/ARCH or PKG=VERSION/ARCH.
    #[arg(value_name = "PKG[=VERSION][/ARCH]", required = true)]
    pub packages: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The source: ARCHIVE/DIST.
    #[arg(long, value_name = "ARCHIVE/DIST")]
    pub from: String,
    /// The target: ARCHIVE/DIST.
    #[arg(long, value_name = "ARCHIVE/DIST")]
    pub to: String,
    /// Only this component of the source (default: every component).
    #[arg(long)]
    pub component: Option<String>,
    /// Also copy the dependencies (Depends, Pre-Depends) found in the source.
    #[arg(long)]
    pub with_deps: bool,
    /// PKG or PKG=VERSION (PKG/ARCH and PKG=VERSION/ARCH too).
    #[arg(value_name = "PKG[=VERSION]", required = true)]
    pub packages: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    pub archive: String,
    /// Only this dist.
    #[arg(long)]
    pub dist: Option<String>,
    /// Shell-style pattern over package names (`*`, `?`).
    pub pattern: Option<String>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The package name (binary or source).
    #[arg(value_name = "PKG")]
    pub package: String,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Freeze every archive into a new snapshot; prints its id last.
    #[command(
        long_about = "Freeze the working state of every archive into a new immutable snapshot: \
indices rendered, Release signed. Prints the id as the last word on stdout. With nothing changed \
since the latest snapshot, prints that id and makes none.\n\nExample:\n  ID=$(halo snapshot create | tail -n1)"
    )]
    Create,
    /// List snapshots, oldest first.
    List,
    /// Show a snapshot's archives, dists and packages.
    Show { id: String },
    /// Packages added, removed, upgraded, downgraded from A to B.
    Diff { a: String, b: String },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["snapshot", "from"])))]
pub struct PromoteArgs {
    /// The channel to move.
    #[arg(long)]
    pub to: String,
    /// Point it at this snapshot.
    #[arg(long)]
    pub snapshot: Option<String>,
    /// Point it at the snapshot this channel points at.
    #[arg(long)]
    pub from: Option<String>,
    /// Only move if the channel points at this snapshot now ('none': empty).
    #[arg(long, value_name = "ID")]
    pub expect: Option<String>,
    /// Why, recorded in the channel history (one line).
    #[arg(long, value_name = "TEXT", value_parser = one_line_text)]
    pub reason: Option<String>,
    /// Move even a held channel, a channel an acceptance run holds, or a
    /// gated channel to a snapshot that never passed acceptance or whose
    /// content was rolled back out of it (needs --reason; recorded).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// One line per channel: name, snapshot id ('-' when empty), its hold.
    List,
    /// Every move of a channel: when, who, from, to, why.
    History { channel: String },
    /// Move a channel back (by default to where it pointed before its latest move).
    Rollback {
        channel: String,
        /// Roll back to this snapshot instead.
        #[arg(long, value_name = "ID")]
        to: Option<String>,
        #[arg(long, value_name = "TEXT", value_parser = one_line_text)]
        reason: Option<String>,
        /// Roll back even a held channel, or to content rolled back out of
        /// it before (needs --reason; recorded).
        #[arg(long)]
        force: bool,
    },
    /// Stop a channel: nothing moves it (agent, jobs, accept, build) until released.
    #[command(
        long_about = "Hold a channel: the agent, the Jenkins jobs, halo accept and halo build \
refuse to move it, each saying it is held and why. Only `halo promote --force --reason` (or \
`channel rollback --force --reason`) moves a held channel, and its history records the hold it \
overrode. The hold stays until `halo channel release`. Holds and releases are in the channel's \
history (who, when, why).\n\nExample:\n  halo channel hold trusty --reason 'incident 42: \
python-jiocloud 2.3 breaks nova'"
    )]
    Hold {
        channel: String,
        /// Why (required; shown by every refusal and recorded).
        #[arg(long, value_name = "TEXT", value_parser = one_line_text)]
        reason: String,
    },
    /// Lift a channel's hold.
    Release {
        channel: String,
        #[arg(long, value_name = "TEXT", value_parser = one_line_text)]
        reason: Option<String>,
    },
    /// Make a channel take only snapshots that passed acceptance (or stop).
    #[command(
        long_about = "A gated channel (halo init gates trusty) moves only to snapshots an \
acceptance run passed for it, to snapshots it held before (rollbacks), or with --force and a \
--reason. --off lifts the gate.\n\nExample:\n  halo channel gate trusty"
    )]
    Gate {
        channel: String,
        /// Lift the gate instead.
        #[arg(long)]
        off: bool,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["snapshot", "channel"])))]
pub struct ExportArgs {
    #[arg(long)]
    pub snapshot: Option<String>,
    #[arg(long)]
    pub channel: Option<String>,
    /// Target directory (new or empty).
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Keep only the newest N snapshots (plus those channels point at).
    #[arg(long, value_name = "N")]
    pub keep_snapshots: Option<usize>,
    /// Also keep, per channel, the snapshots it left in its last N moves:
    /// the mount serves them to clients mid-update and `channel rollback`
    /// returns to them.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub keep_previous: usize,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["names", "all", "path"])))]
pub struct BuildArgs {
    /// Sources to build, by name ([[source]] in the configuration).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Build every configured source whose branch head is not built yet.
    #[arg(long)]
    pub all: bool,
    /// Build the Debian source tree in DIR instead (copied, never changed).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["names", "all"])]
    pub path: Option<PathBuf>,
    /// Build even when the commit was built already.
    #[arg(long)]
    pub force: bool,
    /// Build again a commit whose last build failed (a failed commit is
    /// otherwise not rebuilt until the branch moves).
    #[arg(long)]
    pub retry: bool,
    /// Build only: import nothing, keep the work directory and print it.
    #[arg(long)]
    pub no_publish: bool,
    /// Write the steps as JUnit XML (for Jenkins' junit publisher).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// With --path: the archive the packages go to.
    #[arg(long, requires = "path", default_value = "rustedhalo")]
    pub archive: String,
    /// With --path: the dist.
    #[arg(long, requires = "path", default_value = "trusty")]
    pub dist: String,
    /// With --path: the component.
    #[arg(long, requires = "path", default_value = "main")]
    pub component: String,
    /// With --path: the channel to move to the new snapshot.
    #[arg(long, requires = "path")]
    pub channel: Option<String>,
    /// With --path: unit tests to run in the tree first (sh -c).
    #[arg(long, requires = "path", value_name = "COMMAND")]
    pub test: Option<String>,
    /// Build on the host even where a clean root is configured.
    #[arg(long)]
    pub host: bool,
    /// With --path: build in the clean root of [build] root.
    #[arg(long, requires = "path", conflicts_with = "host")]
    pub root: bool,
}

#[derive(Debug, Default, Args)]
pub struct TestArgs {
    /// A test: NAME=COMMAND (repeatable); accept adds it to [[acceptance.test]], gate runs it instead.
    #[arg(long = "test", value_name = "NAME=COMMAND")]
    pub tests: Vec<String>,
    /// Write the results as JUnit XML (for Jenkins' junit publisher).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Kill a test running longer than this ([acceptance] timeout_minutes).
    #[arg(long, value_name = "MINUTES")]
    pub timeout_minutes: Option<f64>,
    /// gate: also build every [[acceptance.system]] from scratch and test inside it (accept always does).
    #[arg(long)]
    pub systems: bool,
    /// gate: build and test this [[acceptance.system]] (repeatable; accept runs them all).
    #[arg(long = "system", value_name = "NAME", conflicts_with = "systems")]
    pub system: Vec<String>,
    /// Keep the root of a system that failed, and print where it is.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct AcceptArgs {
    /// The channel whose snapshot is frozen and tested ([acceptance] from).
    #[arg(long)]
    pub from: Option<String>,
    /// The channel frozen for the run ([acceptance] testing).
    #[arg(long)]
    pub testing: Option<String>,
    /// The channel a passing run moves ([acceptance] stable).
    #[arg(long)]
    pub stable: Option<String>,
    /// Test this snapshot instead of what --from points at.
    #[arg(long, value_name = "ID")]
    pub snapshot: Option<String>,
    #[command(flatten)]
    pub test: TestArgs,
    /// Take testing's lease even from a live run, and run even when testing
    /// or stable is held (recorded; needs --reason).
    #[arg(long, requires = "reason")]
    pub force: bool,
    /// Why --force was needed.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// How long the lease lasts without renewal ([acceptance] lease_minutes).
    #[arg(long, value_name = "MINUTES")]
    pub lease_minutes: Option<f64>,
    /// Show the lease on testing and the latest runs, and do nothing else.
    #[arg(long, conflicts_with_all = ["snapshot", "force"])]
    pub status: bool,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// The channel whose snapshot is tested.
    #[arg(long, default_value = "trusty-unstable")]
    pub channel: String,
    #[command(flatten)]
    pub test: TestArgs,
}

#[derive(Debug, Subcommand)]
pub enum JenkinsCommand {
    /// Start a job with parameters; with --wait, follow its console and exit by its result.
    #[command(
        long_about = "Queue [jenkins] job NAME (folders as a/b) with the given parameters and \
print the queue item's URL. With --wait, follow the queue item to its build, print the build's \
console as it grows and exit by the result: 0 SUCCESS, 1 UNSTABLE or FAILURE, 2 ABORTED, \
Jenkins unreachable or refusing, or --timeout passed.\n\nExample:\n  halo jenkins trigger --job \
halo-acceptance --param SNAPSHOT=20261205T100000.000Z --wait --timeout 120"
    )]
    Trigger {
        /// The job, `folder/name` for jobs in folders.
        #[arg(long)]
        job: String,
        /// A build parameter (repeatable).
        #[arg(long = "param", value_name = "K=V")]
        params: Vec<String>,
        /// Follow the build and exit by its result.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many minutes (exit 2), whatever
        /// the controller does (the whole command, every reply included).
        #[arg(long, value_name = "MINUTES", requires = "wait", value_parser = trigger_minutes)]
        timeout: Option<f64>,
    },
    /// The controller's version, this host's node, the acceptance job's last build.
    Status,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Run one cycle and exit (no registration, no agent.jar).
    #[arg(long)]
    pub once: bool,
    /// Write the cycle's JUnit XML here: builds, acceptance, the cycle's
    /// own steps ([agent] junit; each cycle replaces it).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// Each source: branch head, last built commit and version, whether a build is due.
    #[command(
        long_about = "For each [[source]]: the head of its branch (git ls-remote, nothing \
fetched), the commit and version of its last published build and the snapshot it landed in, and \
whether a build is due. Exit 2 when a source's repository does not answer.\n\nExample:\n  halo \
sources status --json"
    )]
    Status,
}

#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Where to make the demo store, packages and exports.
    #[arg(long, default_value = "quickstart")]
    pub dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    /// Fetch, verify and store what changed upstream; commit atomically.
    #[command(
        long_about = "Refresh mirrors named in the configuration ([[mirror]] in --config FILE, \
$HALO_CONFIG or STORE/halo.toml). Each upstream InRelease (or Release + Release.gpg) is verified \
against the mirror's keyring, the indices against the Release, and every pool file against its \
index; files the store already holds are not downloaded again. The mirror's new state becomes \
visible to the next snapshot only when everything is verified and stored; on any failure the \
previous state stays. An unchanged upstream costs one conditional request per dist.\n\n\
Example:\n  halo --config /etc/halo.toml mirror update --all\n  halo mirror update ubuntu ceph && halo snapshot create"
    )]
    Update(MirrorUpdateArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["names", "all"])))]
pub struct MirrorUpdateArgs {
    /// Mirrors to update, by name.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Update every configured mirror.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on, e.g. 127.0.0.1:8080 or [::]:8443 (port 0: any free
    /// port, printed). Required: a server is never started by accident.
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// TLS certificate chain (PEM); with --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); with --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token: its hash is stored, the token itself shown once.
    #[command(
        long_about = "Make an API token for `halo serve` with a role: writer (publish builds, snapshots, move channels other than stable ones, the testing lease and verdicts), stable (a writer that may also move a stable channel or force), admin (everything, and tokens). Only its SHA-256 is stored (STORE/serve/tokens.json); the token is written to --output FILE (mode 0600) or, without it, printed on stdout, and never again.\n\nExample:\n  halo token add jenkins-builder --role \
writer --output /etc/halo/builder.token"
    )]
    Add(TokenAddArgs),
    /// Token names, roles and creation times (never the tokens).
    List,
    /// Remove a token: requests with it are refused from then on.
    Remove {
        /// The token's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct TokenAddArgs {
    /// A name for the token (letters, digits, '-', '_', '.').
    pub name: String,
    /// writer, stable or admin.
    #[arg(long, value_parser = ["writer", "stable", "admin"])]
    pub role: String,
    /// Write the token to this new file (mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
