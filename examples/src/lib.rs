//! Shared code of the PC examples.
