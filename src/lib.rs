//! tiny-diffusion: a character-level masked-diffusion language model on Burn.
//!
//! Data flows one way: text → [`vocab`] → batches ([`data`], [`diffusion::masking`]) →
//! [`train`] → [`checkpoint`] → [`diffusion::sampler`] → frames for the CLI and the terminal UI.

pub mod autoregressive;
pub mod fused;
pub mod backend;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod diffusion;
pub mod judge;
pub mod kind;
pub mod life;
pub mod model;
pub mod pytorch;
pub mod race;
pub mod optimizer;
pub mod train;
pub mod uniform;
pub mod vocab;
pub mod tui;
pub mod record;
pub mod elastic;
pub mod eval;
pub mod loss;
pub mod bench;
pub mod shipped;
