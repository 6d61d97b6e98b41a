//! Nucleic-acid testing: a checkpoint registers a sample by scanning a kin code into a tube,
//! a lab reports each tube's result, and a guardian reads the relative's results.

pub mod lab;
pub mod results;
pub mod samples;
