//! provision: library behind the `provision` binary.
