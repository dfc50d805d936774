//! postgres backend (to be written).
