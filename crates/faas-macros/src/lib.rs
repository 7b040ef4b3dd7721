//! The `#[function]` attribute of faas.
