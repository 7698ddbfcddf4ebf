//! operator: placeholder until its module is written.

use super::{Context, Object};

pub const COMPONENT: &str = "operator";

pub fn objects(_ctx: &Context) -> Vec<Object> {
    Vec::new()
}
