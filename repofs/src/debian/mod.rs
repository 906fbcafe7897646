//! Debian's own concepts, validated: versions with dpkg's order, names that
//! become paths, typed control paragraphs, and the `.deb` container.

pub mod control;
pub mod deb;
pub mod name;
pub mod relation;
pub mod version;

pub use control::{BinaryControl, ChangesControl, ControlError, ListedFile, SourceControl};
pub use version::Version;
