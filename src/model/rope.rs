//! Rotary position embeddings' tables: the angles in host memory, once per model, and the
//! cos/sin tensors a forward pass rotates queries and keys by (`fused` picks the kernel).

use super::RMS_EPS;
use crate::fused;
use burn::prelude::*;

/// The rotary frequencies' base (RoPE's, and the Python project's).
const ROPE_BASE: f64 = 10_000.0;

/// The rotary angles' cos and sin for positions `0..len`, in host memory: a model computes them
/// once, for its context, and every forward pass takes its tables from them (on whatever device
/// the pass runs, so they need not follow the model's parameters between devices).
#[derive(Debug, Clone)]
pub struct RotaryAngles {
    half: usize,
    /// (cos, sin) of each position's angle at each frequency, position by position.
    angles: Vec<(f32, f32)>,
}

impl RotaryAngles {
    pub fn new(len: usize, head_dim: usize) -> Self {
        let half = head_dim / 2;
        let inv_freq: Vec<f64> = (0..half).map(|i| ROPE_BASE.powf(-((2 * i) as f64) / head_dim as f64)).collect();
        let mut angles = Vec::with_capacity(len * half);
        for pos in 0..len {
            for &inv_freq in &inv_freq {
                let angle = pos as f64 * inv_freq;
                angles.push((angle.cos() as f32, angle.sin() as f32));
            }
        }
        RotaryAngles { half, angles }
    }

    /// Positions covered.
    pub fn len(&self) -> usize {
        self.angles.len() / self.half.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.angles.is_empty()
    }

    /// The tables of positions `0..seq_len` (at most `len()`) as tensors on `device`.
    pub fn rope(&self, seq_len: usize, device: &Device) -> Rope {
        let n = seq_len * self.half;
        let table = |part: fn(&(f32, f32)) -> f32| Tensor::<4>::from_data(TensorData::new(self.angles[..n].iter().map(part).collect(), [1, 1, seq_len, self.half]), device);
        Rope { cos: table(|a| a.0), sin: table(|a| a.1) }
    }
}

/// Rotary tables for a sequence of `seq_len` positions: cos and sin, `[1, 1, seq_len, head_dim / 2]`.
pub struct Rope {
    cos: Tensor<4>,
    sin: Tensor<4>,
}

impl Rope {
    pub fn new(seq_len: usize, head_dim: usize, device: &Device) -> Self {
        RotaryAngles::new(seq_len, head_dim).rope(seq_len, device)
    }

    /// The tables of a contiguous range of positions.
    pub fn rows(&self, rows: std::ops::Range<usize>) -> Rope {
        Rope { cos: self.cos.clone().narrow(2, rows.start, rows.len()), sin: self.sin.clone().narrow(2, rows.start, rows.len()) }
    }

    /// The tables of the given positions only.
    pub fn at(&self, positions: &Tensor<1, Int>) -> Rope {
        Rope { cos: self.cos.clone().select(2, positions.clone()), sin: self.sin.clone().select(2, positions.clone()) }
    }

    /// Half-split rotation: `[x1, x2] → [x1·cos + x2·sin, −x1·sin + x2·cos]` on `[b, h, t, hd]`
    /// (`fused` picks its kernel).
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        fused::rope(x, self.cos.clone(), self.sin.clone())
    }

    /// `rms_norm(self.apply(x))`, one pass where the fused ops run: how queries and keys are made.
    pub fn apply_rms_norm(&self, x: Tensor<4>) -> Tensor<4> {
        fused::rope_rms_norm(x, self.cos.clone(), self.sin.clone(), RMS_EPS)
    }

    /// The tables, `[1, 1, seq, head_dim / 2]` each.
    pub fn tables(&self) -> (Tensor<4>, Tensor<4>) {
        (self.cos.clone(), self.sin.clone())
    }
}
