//! The JSON of the write API (`serve::write`) and of its client
//! ([`super::Remote`]): one definition for both ends, so they cannot
//! drift. Store types (`ChannelPointer`, `Lease`, `RunEvent`,
//! `BuildRecord`, the snapshot manifest) travel as repofs serializes them.

use repofs::model::acceptance::{Lease, Verdict};
use repofs::model::{Action, ChannelPointer, HistoryEntry};
use serde::{Deserialize, Serialize};

/// An error answer: `error` is the one line to show; `kind` and the
/// fields after it let the client rebuild the store's own error (a lost
/// compare-and-swap is `PromoteError::Stale` on both ends), `user` says
/// whether it was the request's fault (exit 1) or not (exit 2).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
}

/// `POST /api/v1/uploads`: a new upload area.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadCreated {
    pub upload: String,
}

/// `PUT /api/v1/uploads/{upload}/{name}`: one file arrived whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileReceived {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// The first member of a batch upload's tar stream: `sha256sum`'s lines
/// (`HEX  NAME`) for every file that follows.
pub const BATCH_MANIFEST: &str = ".halo-sha256sums";

/// `PUT /api/v1/uploads/{upload}` (a tar stream): every file arrived whole
/// with the digest its manifest declared.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchReceived {
    pub files: Vec<FileReceived>,
}

/// `POST /api/v1/uploads/{upload}/import`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportBody {
    pub archive: String,
    pub dist: String,
    pub component: String,
    /// The files to import by name (a .changes brings the files it lists,
    /// which must be uploaded too).
    pub files: Vec<String>,
}

/// What an import did (`repofs::store::import::ImportReport`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Imported {
    pub added: Vec<String>,
    pub unchanged: Vec<String>,
    /// Older versions the server's `keep_versions` for the archive dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
}

/// `POST /api/v1/snapshots`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotMade {
    pub id: String,
    pub new: bool,
}

/// `POST /api/v1/channels/{name}/move`: a `MoveRequest`; `who` and `when`
/// are the server's (the token's name, its clock), `client` is who asked
/// on the agent's side, recorded with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MoveBody {
    pub target: String,
    /// The compare-and-swap: `none` for an empty channel; absent: none.
    #[serde(default)]
    pub expect: Option<String>,
    pub action: Action,
    #[serde(default)]
    pub reason: Option<String>,
    /// The acceptance run moving a channel it leased.
    #[serde(default)]
    pub lease: Option<String>,
    #[serde(default)]
    pub force: bool,
    /// Only while this channel still points at `if_snapshot` (an
    /// acceptance run's promotion: exactly the snapshot it tested).
    #[serde(default)]
    pub if_channel: Option<String>,
    #[serde(default)]
    pub if_snapshot: Option<String>,
    #[serde(default)]
    pub client: Option<String>,
}

/// What a move did: `moved: false` when the channel was there already.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Moved {
    pub moved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<ChannelPointer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<HistoryEntry>,
}

/// `POST /api/v1/leases/{channel}`: the lease wanted; its times are
/// replaced by the server's clock, keeping its length.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseBody {
    pub lease: Lease,
    #[serde(default)]
    pub force: bool,
}

/// The lease taken over, if any, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseTaken {
    pub lease: Lease,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Lease>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `PUT /api/v1/leases/{channel}/{run}`: renew for `length_ms` from now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenewBody {
    pub length_ms: u64,
}

/// `GET /api/v1/verdicts/{channel}/{snapshot}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerdictAnswer {
    pub verdict: Option<Verdict>,
}

/// One file of a snapshot's APT tree (`GET /api/v1/snapshots/{id}/files`):
/// `path` is `<archive>/<path in the archive>`, as under
/// `/snapshots/{id}/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TreeEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// `{"ok": true}` for writes with nothing else to say.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    pub ok: bool,
}
