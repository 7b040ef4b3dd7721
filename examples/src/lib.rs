//! Runnable examples of faas; see the `examples/` targets of this package.
