//! The vocabulary every layer shares, pure: an API object and its kind, the names and labels
//! automon marks its objects with, the resource types it knows without discovery, nodes and pods
//! as it reads them, Kubernetes' selector rules, a check's finding and an object's diff.

pub mod diff;
pub mod exporter;
pub mod finding;
pub mod names;
mod object;
pub mod resources;
pub mod selector;
pub mod slim;
pub mod slim_pb;

pub use object::{
    Object, api_version, group_kind, is_automons, is_parent, kind, metadata_only, to_yaml,
};
