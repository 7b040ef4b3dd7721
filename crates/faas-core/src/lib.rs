//! The function model of faas.
