//! The automation of the faas workspace.
fn main() {}
