//! big_brother (placeholder while building)
