//! graders (to be written).
