//! Masked diffusion: the noising process used in training and the samplers that reverse it.

pub mod cell;
pub mod decode;
pub mod edits;
pub mod generation;
pub mod masking;
pub mod remdm;
pub mod rules;
pub mod sampler;
#[cfg(test)]
mod sampler_tests;

pub use decode::{DecodeOptions, Remask, Strategy, Timestep};
pub use generation::{DEFAULT_OVERLAP, Generation, NewStepper, Stepper, Window};
pub use cell::{Belief, Cell, Frame};
pub use sampler::{Denoiser, Sampler, Time, look};

