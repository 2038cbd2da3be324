//! The web site: the_secretary, the_scribe and their output.
pub mod pages;
pub mod text;
pub mod version;
pub mod writer;
