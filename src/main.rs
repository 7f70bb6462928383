//! The `ancm` gateway.
fn main() {}
