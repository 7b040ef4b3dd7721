//! Triggers for faas functions.
