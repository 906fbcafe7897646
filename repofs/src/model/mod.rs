//! The pure model of the store: component states, snapshot manifests and
//! ids, channels and their moves, snapshot diffs, the APT tree a snapshot
//! presents, removals and copies between archives, dependency closures and
//! the answers of `halo list`/`halo show`, whether a recorded process
//! still runs. Nothing here touches the disk or the clock.

pub mod acceptance;
pub mod channel;
pub mod closure;
pub mod copy;
pub mod diff;
pub mod edit;
pub mod process;
pub mod query;
pub mod retention;
pub mod snapshot;
pub mod state;
pub mod state_json;
pub mod state_view;
pub mod tree;
pub mod verbatim;

pub use channel::{Action, ChannelPointer, HistoryEntry, PromoteError, Transition};
pub use snapshot::{ArchiveSnapshot, DistFile, DistSnapshot, Snapshot, StateMap};
pub use state::{BinaryEntry, ComponentState, PoolFile, SourceEntry};
