//! prompts (to be written).
