//! The memory of a `[batch, heads, seq, head_dim]` tensor, read and written through its strides.
//!
//! The model splits a linear layer's `[batch, seq, heads · head_dim]` output into heads with
//! `swap_dims(1, 2)` (`Attention::heads`), a view whose rows of `head_dim` are `heads · head_dim`
//! apart, and the output projection reads the heads back in that order. The fused ops read such
//! views in place and write their outputs and gradients in the order the next op reads, so that
//! no copy transposes the heads between them (burn-flex's `copy_2d_tiled` took 3.5% of a training
//! step on an AVX2 CPU when they did).

use super::tensor;
use burn_flex::FlexTensor;
use std::mem::MaybeUninit;

/// A row-major `[rows, cols]` matrix inside a larger buffer: `ptr` plus the step between rows
/// (columns are adjacent). Transposition swaps the strides when the view is handed to gemm.
#[derive(Clone, Copy)]
pub struct View {
    pub ptr: *const f32,
    pub row_stride: usize,
}

// SAFETY: views only read buffers that outlive the parallel loops they are used in.
unsafe impl Send for View {}
unsafe impl Sync for View {}

/// Where each of the `batch × heads` heads' `[seq, head_dim]` matrices starts.
#[derive(Clone, Copy)]
pub struct Heads {
    pub base: View,
    pub batch_stride: usize,
    pub head_stride: usize,
    pub heads: usize,
}

impl Heads {
    /// The heads of `x`, `[batch, heads, seq, head_dim]` with a dense last dimension and
    /// non-negative strides (as [`readable`] gives).
    pub fn of(x: &FlexTensor) -> Heads {
        let s = x.layout().strides();
        let data = &x.storage::<f32>()[x.layout().start_offset()..];
        Heads {
            base: View { ptr: data.as_ptr(), row_stride: s[2] as usize },
            batch_stride: s[0] as usize,
            head_stride: s[1] as usize,
            heads: x.layout().shape()[1],
        }
    }

    /// Head `i` of the `batch × heads`, in batch-major order.
    pub fn head(&self, i: usize) -> View {
        let (b, h) = (i / self.heads, i % self.heads);
        // SAFETY: the caller built `Heads` from a tensor holding every addressed head.
        let ptr = unsafe { self.base.ptr.add(b * self.batch_stride + h * self.head_stride) };
        View { ptr, row_stride: self.base.row_stride }
    }
}

/// `x` if the fused kernels can read it in place (its last dimension dense, no stride negative,
/// as the model's head split), else a contiguous copy.
pub fn readable(x: FlexTensor) -> FlexTensor {
    let strides = x.layout().strides();
    if strides.len() == 4 && strides[3] == 1 && strides.iter().all(|&s| s >= 0) { x } else { x.to_contiguous() }
}

/// The two orders the model lays heads out in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadsLayout {
    /// Row-major `[batch, heads, seq, head_dim]`.
    HeadMajor,
    /// Row-major `[batch, seq, heads, head_dim]` seen as `[batch, heads, seq, head_dim]`.
    TokenMajor,
}

impl HeadsLayout {
    /// The layout of `x`, if it is one of the two; head-major if it is neither, which a gradient
    /// may always be.
    pub fn of(x: &FlexTensor) -> HeadsLayout {
        let shape = dims(x);
        let strides = x.layout().strides();
        // A dimension of size one may have any stride.
        let matches = |l: HeadsLayout| l.strides(shape).iter().zip(strides).zip(shape).all(|((&a, &b), n)| n <= 1 || a as isize == b);
        if !matches(HeadsLayout::HeadMajor) && matches(HeadsLayout::TokenMajor) { HeadsLayout::TokenMajor } else { HeadsLayout::HeadMajor }
    }

    fn strides(self, [_, h, t, d]: [usize; 4]) -> [usize; 4] {
        match self {
            HeadsLayout::HeadMajor => [h * t * d, t * d, d, 1],
            HeadsLayout::TokenMajor => [t * h * d, d, h * d, 1],
        }
    }

    /// Where each head of `data`, laid out in this order for `shape`, starts: for a kernel to
    /// write them (each head's rows are disjoint from every other head's) into a buffer not yet
    /// written (see `super::written`).
    pub fn heads_unwritten(self, data: &mut [MaybeUninit<f32>], shape: [usize; 4]) -> HeadsMut {
        self.heads_at(data.as_mut_ptr().cast(), data.len(), shape)
    }

    fn heads_at(self, ptr: *mut f32, len: usize, shape: [usize; 4]) -> HeadsMut {
        assert_eq!(len, shape.iter().product::<usize>(), "a buffer of the tensor's size");
        let [batch_stride, head_stride, row_stride, _] = self.strides(shape);
        HeadsMut { ptr, batch_stride, head_stride, row_stride, heads: shape[1] }
    }

    /// `data`, laid out in this order, as the `[batch, heads, seq, head_dim]` tensor `shape`.
    pub fn tensor(self, data: Vec<f32>, [b, h, t, d]: [usize; 4]) -> FlexTensor {
        match self {
            HeadsLayout::HeadMajor => tensor(data, [b, h, t, d]),
            HeadsLayout::TokenMajor => tensor(data, [b, t, h, d]).transpose(1, 2),
        }
    }
}

/// `Heads` for writing: each head's `[seq, head_dim]` rows inside one buffer.
#[derive(Clone, Copy)]
pub struct HeadsMut {
    ptr: *mut f32,
    batch_stride: usize,
    head_stride: usize,
    row_stride: usize,
    heads: usize,
}

// SAFETY: the kernels write each head from one task only, and the heads do not overlap.
unsafe impl Send for HeadsMut {}
unsafe impl Sync for HeadsMut {}

impl HeadsMut {
    /// Head `i`'s first element and the step between its rows.
    pub fn head(&self, i: usize) -> (*mut f32, usize) {
        let (b, h) = (i / self.heads, i % self.heads);
        // SAFETY: `heads_unwritten` checked that the buffer holds every head.
        (unsafe { self.ptr.add(b * self.batch_stride + h * self.head_stride) }, self.row_stride)
    }
}

/// The shape of a `[batch, heads, seq, head_dim]` tensor.
pub fn dims(x: &FlexTensor) -> [usize; 4] {
    let s = x.layout().shape();
    assert_eq!(s.num_dims(), 4, "the fused ops take [batch, heads, seq, head_dim]");
    [s[0], s[1], s[2], s[3]]
}
