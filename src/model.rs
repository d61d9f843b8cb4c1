//! The model: a transformer in the style of nanochat's GPT, for every model kind.
//!
//! token embedding (+ optional timestep embedding) → RMSNorm → N × Block → RMSNorm → head.
//! A Block is pre-norm attention then pre-norm MLP, each added to the residual stream.
//! A masked-diffusion model's attention sees every position: it fills masked characters using
//! context on both sides. An autoregressive model's is causal (`ModelKind::is_causal`): each
//! position sees itself and what lies before it. Rotary embeddings carry position; there is no
//! learned position table, so any length up to `context` works.

use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use crate::fused;
use serde::{Deserialize, Serialize};
use std::ops::Range;

mod rope;
pub use rope::{Rope, RotaryAngles};

/// PyTorch's `F.rms_norm` default: the float32 machine epsilon.
pub const RMS_EPS: f64 = f32::EPSILON as f64;

// The largest shapes a config may ask for: far beyond any model this tool trains, and small enough
// that a damaged or hostile config.json is refused before it allocates gigabytes.
const MAX_VOCAB: usize = 1 << 16;
const MAX_LAYERS: usize = 128;
const MAX_EMBD: usize = 4096;
const MAX_CONTEXT: usize = 16_384;
const MAX_TIMESTEPS: usize = 100_000;

/// Outputs of a head that knows the length states, after the vocabulary's ids: *expand* and
/// *delete* (`diffusion::edits`).
pub const LENGTH_STATES: usize = 2;

/// Model shape. Stored in every checkpoint's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub vocab_size: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    /// Longest sequence the model is trained on (characters).
    pub context: usize,
    /// Number of timestep buckets for a learned timestep embedding; 0 means none
    /// (the reference's second version). The first version used 128.
    #[serde(default)]
    pub n_timesteps: usize,
    /// What the model is trained to do. Checkpoints written before kinds existed are masked.
    #[serde(default)]
    pub kind: ModelKind,
    /// Whether the head also predicts the two length states of `diffusion::edits` (expand,
    /// delete) after the vocabulary's ids: a masked model trained for gaps that find their own
    /// length. `vocab_size` counts them. Checkpoints written before them have none.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub edits: bool,
}

/// What a model is trained to predict. The transformer is the same for every kind but for its
/// attention mask; how each kind is trained and decoded is `kind.rs`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Masked diffusion: hidden characters are predicted from both sides, many per step.
    #[default]
    Masked,
    /// Autoregressive: each character is predicted from those before it, one per step.
    Ar,
    /// Uniform-noise diffusion: random characters are corrected, every position every step.
    Uniform,
}

impl ModelKind {
    /// Whether a position's attention sees only itself and earlier positions.
    pub fn is_causal(self) -> bool {
        self == ModelKind::Ar
    }
}

/// Named model sizes. `tiny` is for tests; `base` is the reference's 10.7M model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Tiny,
    Small,
    Base,
}

impl Preset {
    pub fn config(self, vocab_size: usize) -> ModelConfig {
        let (n_layer, n_head, n_embd, context) = match self {
            Preset::Tiny => (2, 2, 64, 64),
            Preset::Small => (4, 4, 256, 256),
            Preset::Base => (6, 6, 384, 256),
        };
        ModelConfig { vocab_size, n_layer, n_head, n_embd, context, n_timesteps: 0, kind: ModelKind::Masked, edits: false }
    }
}

impl ModelConfig {
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Ids of the vocabulary (MASK and the characters), without the length states.
    pub fn vocab_ids(&self) -> usize {
        self.vocab_size.saturating_sub(if self.edits { LENGTH_STATES } else { 0 })
    }

    pub fn validate(&self) -> Result<(), String> {
        for (field, value, limit) in [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("n_layer", self.n_layer, MAX_LAYERS),
            ("n_embd", self.n_embd, MAX_EMBD),
            ("context", self.context, MAX_CONTEXT),
            ("n_timesteps", self.n_timesteps, MAX_TIMESTEPS),
        ] {
            if value > limit {
                return Err(format!("{field} {value} is over this program's limit of {limit}"));
            }
        }
        if self.n_head == 0 || !self.n_embd.is_multiple_of(self.n_head) {
            return Err(format!("n_embd {} is not divisible by n_head {}", self.n_embd, self.n_head));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(format!("head dim {} must be even for rotary embeddings", self.head_dim()));
        }
        if self.vocab_ids() < 2 || self.n_layer == 0 || self.n_embd == 0 || self.context == 0 {
            return Err("vocab_size, n_layer, n_embd and context must be positive".into());
        }
        Ok(())
    }

    /// Every parameter's name (as a checkpoint stores it) and shape, each dimension beside the
    /// config field it comes from; read from the config alone, so that a checkpoint's weights can
    /// be checked against its config.json before anything is allocated. A test holds it to the
    /// model `init` builds.
    pub fn parameter_shapes(&self) -> Vec<(String, [(&'static str, usize); 2])> {
        let (d, v) = (("n_embd", self.n_embd), ("vocab_size", self.vocab_size));
        let mlp = ("4 × n_embd", 4 * self.n_embd);
        let mut shapes = vec![("token_emb.weight".to_string(), [v, d])];
        if self.n_timesteps > 0 {
            shapes.push(("time_emb.weight".to_string(), [("n_timesteps", self.n_timesteps), d]));
        }
        for i in 0..self.n_layer {
            for name in ["c_q", "c_k", "c_v", "c_proj"] {
                shapes.push((format!("blocks.{i}.attn.{name}.weight"), [d, d]));
            }
            shapes.push((format!("blocks.{i}.mlp.c_fc.weight"), [d, mlp]));
            shapes.push((format!("blocks.{i}.mlp.c_proj.weight"), [mlp, d]));
        }
        shapes.push(("lm_head.weight".to_string(), [d, v]));
        shapes
    }

    /// Parameter count, computed from the shape (matches `Module::num_params`).
    pub fn num_params(&self) -> usize {
        let d = self.n_embd;
        let per_block = 4 * d * d + 2 * 4 * d * d;
        2 * self.vocab_size * d + self.n_timesteps * d + self.n_layer * per_block
    }

    pub fn init(&self, device: &Device) -> Model {
        let d = self.n_embd;
        let linear = |i, o| LinearConfig::new(i, o).with_bias(false);
        // Zero-initialised output projections make every block start as the identity,
        // as in nanochat; it trains noticeably faster than the default init.
        let zero_linear = |i, o| linear(i, o).with_initializer(Initializer::Zeros);
        let blocks = (0..self.n_layer)
            .map(|_| Block {
                attn: Attention {
                    c_q: linear(d, d).init(device),
                    c_k: linear(d, d).init(device),
                    c_v: linear(d, d).init(device),
                    c_proj: zero_linear(d, d).init(device),
                    n_head: self.n_head,
                    causal: self.kind.is_causal(),
                },
                mlp: Mlp { c_fc: linear(d, 4 * d).init(device), c_proj: zero_linear(4 * d, d).init(device) },
            })
            .collect();
        Model {
            config: self.clone(),
            rotary: RotaryAngles::new(self.context, self.head_dim()),
            token_emb: EmbeddingConfig::new(self.vocab_size, d).init(device),
            // Zero, so a timestep model starts as the plain model. With the default N(0, 1) init,
            // rows of different mask rates got unrelated random offsets and training stalled at
            // the unigram loss (docs/training.md, recipe study).
            time_emb: (self.n_timesteps > 0)
                .then(|| EmbeddingConfig::new(self.n_timesteps, d).with_initializer(Initializer::Zeros).init(device)),
            blocks,
            lm_head: linear(d, self.vocab_size)
                .with_initializer(Initializer::Normal { mean: 0.0, std: 0.001 })
                .init(device),
        }
    }
}

/// Parameter-free RMSNorm over the last dimension (`fused` picks its kernel).
pub fn rms_norm<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    fused::rms_norm(x, RMS_EPS)
}

#[derive(Module, Debug)]
pub struct Attention {
    pub c_q: Linear,
    pub c_k: Linear,
    pub c_v: Linear,
    pub c_proj: Linear,
    #[module(skip)]
    pub n_head: usize,
    /// Whether a query sees only keys at or before its own position (`fused::attention`).
    #[module(skip)]
    pub causal: bool,
}

impl Attention {
    /// Keys (rotated, normalised) and values of the rows of `x`, whose positions `rope` holds,
    /// as `[batch, heads, rows, head_dim]`.
    pub fn keys_values(&self, x: Tensor<3>, rope: &Rope) -> (Tensor<4>, Tensor<4>) {
        let k = rope.apply_rms_norm(self.heads(fused::linear(&self.c_k, x.clone())));
        (k, self.heads(fused::linear(&self.c_v, x)))
    }

    /// Queries, keys (both rotated, normalised) and values of every row of `x`, whose positions
    /// `rope` holds, as `[batch, heads, rows, head_dim]`: one op where the fused kernels run.
    pub fn queries_keys_values(&self, x: Tensor<3>, rope: &Rope) -> [Tensor<4>; 3] {
        let (cos, sin) = rope.tables();
        if let Some(qkv) = fused::projections(x.clone(), [&self.c_q, &self.c_k, &self.c_v], self.n_head, cos, sin, RMS_EPS) {
            return qkv.map(|y| self.heads(y));
        }
        let (k, v) = self.keys_values(x.clone(), rope);
        [self.queries(x, rope), k, v]
    }

    /// Queries (rotated, normalised) of the rows of `x`, whose positions `rope` holds.
    fn queries(&self, x: Tensor<3>, rope: &Rope) -> Tensor<4> {
        rope.apply_rms_norm(self.heads(fused::linear(&self.c_q, x)))
    }

    /// The output for the query rows `x_q` (positions in `rope_q`) over the keys and values given.
    pub fn attend(&self, x_q: Tensor<3>, rope_q: &Rope, k: Tensor<4>, v: Tensor<4>) -> Tensor<3> {
        self.attend_queries(self.queries(x_q, rope_q), k, v)
    }

    /// The output for the queries `q` over the keys and values given.
    fn attend_queries(&self, q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<3> {
        // Merging the heads copies nothing where attention is fused: it writes in this order.
        let y = fused::attention(q, k, v, self.causal).swap_dims(1, 2);
        let [b, t, h, hd] = y.dims();
        fused::linear(&self.c_proj, y.reshape([b, t, h * hd]))
    }

    fn heads(&self, y: Tensor<3>) -> Tensor<4> {
        let [b, t, d] = y.dims();
        y.reshape([b, t, self.n_head, d / self.n_head]).swap_dims(1, 2)
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    pub c_fc: Linear,
    pub c_proj: Linear,
}

impl Mlp {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        fused::linear(&self.c_proj, fused::linear_relu_squared(&self.c_fc, x))
    }
}

#[derive(Module, Debug)]
pub struct Block {
    pub attn: Attention,
    pub mlp: Mlp,
}

impl Block {
    /// The residual stream at the `queries` rows (all when `None`) after this block, with the
    /// block's keys and values of every row.
    pub fn forward(&self, x: Tensor<3>, rope: &Rope, queries: Option<&Tensor<1, Int>>) -> (Tensor<3>, Tensor<4>, Tensor<4>) {
        let h = rms_norm(x.clone());
        if queries.is_none() {
            let [q, k, v] = self.attn.queries_keys_values(h, rope);
            return (self.add_mlp(x + self.attn.attend_queries(q, k.clone(), v.clone())), k, v);
        }
        let (k, v) = self.attn.keys_values(h.clone(), rope);
        (self.finish(x, h, rope, queries, k.clone(), v.clone()), k, v)
    }

    /// Like `forward` for some rows of a window (`x` holds them, `rope` their positions): the
    /// window's `rows` ranges, each starting at its row of `x` in `starts`, get their keys and
    /// values from `x`; every other row's come from `cache_k` and `cache_v`. Returns the cache
    /// with the rows' keys and values written in: in place where the cache is the only handle on
    /// its memory (burn-flex's `slice_assign` copies a shared or strided tensor whole).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_rows(&self, x: Tensor<3>, rope: &Rope, queries: Option<&Tensor<1, Int>>, rows: &[Range<usize>], starts: &[usize], cache_k: Tensor<4>, cache_v: Tensor<4>) -> (Tensor<3>, Tensor<4>, Tensor<4>) {
        let h = rms_norm(x.clone());
        let (k, v) = self.attn.keys_values(h.clone(), rope);
        let [b, heads, _, hd] = k.dims();
        let (mut k_all, mut v_all) = (cache_k, cache_v);
        for (r, &at) in rows.iter().zip(starts) {
            let slot = [0..b, 0..heads, r.clone(), 0..hd];
            k_all = k_all.slice_assign(slot.clone(), k.clone().narrow(2, at, r.len()));
            v_all = v_all.slice_assign(slot, v.clone().narrow(2, at, r.len()));
        }
        (self.finish(x, h, rope, queries, k_all.clone(), v_all.clone()), k_all, v_all)
    }

    /// Like `forward` for rows that follow those whose keys and values are `past` (a causal
    /// model's cache): the rows' own keys and values are appended to it. Only the last row's
    /// output is computed when `last_only`.
    pub fn forward_append(&self, x: Tensor<3>, rope: &Rope, last_only: bool, past: Option<(Tensor<4>, Tensor<4>)>) -> (Tensor<3>, Tensor<4>, Tensor<4>) {
        let h = rms_norm(x.clone());
        let (k, v) = self.attn.keys_values(h.clone(), rope);
        let (k, v) = match past {
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            None => (k, v),
        };
        let n = x.dims()[1];
        let (x, h, rope_q) = if last_only { (x.narrow(1, n - 1, 1), h.narrow(1, n - 1, 1), &rope.rows(n - 1..n)) } else { (x, h, rope) };
        (self.add_mlp(x + self.attn.attend(h, rope_q, k.clone(), v.clone())), k, v)
    }

    /// Attention from the query rows over `k`, `v`, then the MLP, each added to the residual.
    fn finish(&self, x: Tensor<3>, h: Tensor<3>, rope: &Rope, queries: Option<&Tensor<1, Int>>, k: Tensor<4>, v: Tensor<4>) -> Tensor<3> {
        let (x, h, rope_q) = match queries {
            Some(p) => (x.select(1, p.clone()), h.select(1, p.clone()), &rope.at(p)),
            None => (x, h, rope),
        };
        self.add_mlp(x + self.attn.attend(h, rope_q, k, v))
    }

    /// The residual stream `x` (attention's output already added) with the MLP's added.
    fn add_mlp(&self, x: Tensor<3>) -> Tensor<3> {
        x.clone() + self.mlp.forward(rms_norm(x))
    }
}

/// Every block's keys and values over a whole window (`[1, heads, seq, head_dim]` each), from a
/// full pass: what a denoising step reuses for the rows it does not recompute.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    /// Each block's keys and values, first block first.
    pub blocks: Vec<(Tensor<4>, Tensor<4>)>,
}

impl KvCache {
    /// The cache of the first `n` positions only.
    pub fn truncate(self, n: usize) -> KvCache {
        KvCache { blocks: self.blocks.into_iter().map(|(k, v)| (k.narrow(2, 0, n), v.narrow(2, 0, n))).collect() }
    }

    /// How many positions the cached window holds.
    pub fn len(&self) -> usize {
        self.blocks.first().map_or(0, |(k, _)| k.dims()[2])
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Module, Debug)]
pub struct Model {
    /// The shape the model was built with (not a parameter).
    #[module(skip)]
    pub config: ModelConfig,
    /// Computed once from the config, for every forward pass.
    #[module(skip)]
    rotary: RotaryAngles,
    pub token_emb: Embedding,
    pub time_emb: Option<Embedding>,
    pub blocks: Vec<Block>,
    pub lm_head: Linear,
}

impl Model {
    /// `tokens`: `[batch, seq]` ids (the MASK id where a character is hidden).
    /// `timesteps`: `[batch]` bucket ids, used only by models with a timestep embedding.
    /// Returns logits `[batch, seq, vocab]`.
    pub fn forward(&self, tokens: Tensor<2, Int>, timesteps: Option<Tensor<1, Int>>) -> Tensor<3> {
        self.forward_at(tokens, timesteps, None)
    }

    /// Logits at `positions` only, `[batch, positions, vocab]` (all positions when `None`). Equal to
    /// `forward` there, for less work: the last block's queries, MLP and the head run at those
    /// positions alone, since nothing after them reads the others. A denoising step needs a few
    /// positions (the still-masked ones in the span), which saves ≈ 14% of a `base` step.
    pub fn forward_at(&self, tokens: Tensor<2, Int>, timesteps: Option<Tensor<1, Int>>, positions: Option<Tensor<1, Int>>) -> Tensor<3> {
        self.forward_caching(tokens, timesteps, positions).0
    }

    /// `forward_at`, also returning every block's keys and values for later `forward_rows` calls.
    pub fn forward_caching(&self, tokens: Tensor<2, Int>, timesteps: Option<Tensor<1, Int>>, positions: Option<Tensor<1, Int>>) -> (Tensor<3>, KvCache) {
        // Causal attention aligns its queries with the last keys (`fused::attention`), so a causal
        // model computes every row and picks the positions afterwards. So does a GPU: 256 rows
        // cost it little more than 8, and one row count is one set of kernels to compile and
        // autotune instead of one per power of two of the masked count (on lavapipe those took
        // most of a first `generate`; docs/performance.md).
        let every_row = self.config.kind.is_causal() || !fused::on_flex(&tokens.device());
        if let Some(positions) = positions.as_ref().filter(|_| every_row) {
            let (logits, cache) = self.forward_caching(tokens, timesteps, None);
            return (logits.select(1, positions.clone()), cache);
        }
        let t = tokens.dims()[1];
        let rope = self.rope(t, &tokens.device());
        let mut x = self.embed(tokens, timesteps);
        let mut cache = KvCache::default();
        let last = self.blocks.len() - 1;
        for (i, block) in self.blocks.iter().enumerate() {
            let (k, v);
            (x, k, v) = block.forward(x, &rope, if i == last { positions.as_ref() } else { None });
            cache.blocks.push((k, v));
        }
        (fused::linear(&self.lm_head, rms_norm(x)), cache)
    }

    /// Logits at `positions` (indices into the window, all within `rows`), recomputing only the
    /// window's `rows` (disjoint ranges, in order); every other row's keys and values come from
    /// `cache`, a full pass over an earlier state of the window. Exact when nothing changed since
    /// the cache was made; otherwise the other rows' keys and values are stale (Fast-dLLM's dual
    /// cache), as those rows' own tokens have not changed but what they attended to has.
    ///
    /// The recomputed rows' keys and values are written into `cache`: the other rows' stay those
    /// of the full pass, and a later call over the same `rows` overwrites these before reading
    /// them, so its logits are what they would be from the full pass's cache. Written in place,
    /// the cache is not copied whole every step (8% of a cached `small` step in `perf`).
    pub fn forward_rows(&self, tokens: Tensor<2, Int>, timesteps: Option<Tensor<1, Int>>, rows: &[Range<usize>], positions: &[usize], cache: &mut KvCache) -> Tensor<3> {
        let t = tokens.dims()[1];
        let device = tokens.device();
        let ints = |v: Vec<i64>| {
            let n = v.len();
            Tensor::<1, Int>::from_data(TensorData::new(v, [n]), &device)
        };
        // The CPU runs the recomputed rows alone. A GPU runs every row and keeps the recomputed
        // rows' keys and values (the same numbers, as the others' keys and values still come from
        // the cache): one row count for every step, as in `forward_caching`.
        let every_row = !fused::on_flex(&device);
        let recomputed: Vec<usize> = if every_row { (0..t).collect() } else { rows.iter().flat_map(|r| r.clone()).collect() };
        let row_of = |p: usize| recomputed.iter().position(|&r| r == p).expect("every position lies in a recomputed row") as i64;
        let starts: Vec<usize> = rows.iter().map(|r| row_of(r.start) as usize).collect();
        let queries = ints(positions.iter().map(|&p| row_of(p)).collect());
        let (mut x, rope) = if every_row {
            (self.embed(tokens, timesteps), self.rope(t, &device))
        } else {
            let recomputed = ints(recomputed.iter().map(|&r| r as i64).collect());
            (self.embed(tokens.select(1, recomputed.clone()), timesteps), self.rope(t, &device).at(&recomputed))
        };
        let last = self.blocks.len() - 1;
        let cached = std::mem::take(&mut cache.blocks);
        for (i, (block, (cached_k, cached_v))) in self.blocks.iter().zip(cached).enumerate() {
            let q = (i == last && !every_row).then_some(&queries);
            let (k, v);
            (x, k, v) = block.forward_rows(x, &rope, q, rows, &starts, cached_k, cached_v);
            cache.blocks.push((k, v));
        }
        let logits = fused::linear(&self.lm_head, rms_norm(x));
        if every_row { logits.select(1, queries) } else { logits }
    }

    /// A causal model's next-character logits after `tokens` (`[1, n]`, the window's rows
    /// `cache.len()..cache.len() + n`), given the keys and values of the rows before them: the
    /// logits at the last row (`[1, 1, vocab]`) if `last_only`, else at every new row
    /// (`[1, n, vocab]`), and the cache extended by these rows. Exact, as no row of a causal model
    /// reads a later one.
    pub fn forward_append(&self, tokens: Tensor<2, Int>, cache: Option<KvCache>, last_only: bool) -> (Tensor<3>, KvCache) {
        debug_assert!(self.config.kind.is_causal(), "only a causal model's rows can be appended");
        let (start, n) = (cache.as_ref().map_or(0, KvCache::len), tokens.dims()[1]);
        let rope = self.rope(start + n, &tokens.device()).rows(start..start + n);
        let mut x = self.embed(tokens, None);
        let mut past = cache.map(|c| c.blocks.into_iter());
        let mut next = KvCache::default();
        let last = self.blocks.len() - 1;
        for (i, block) in self.blocks.iter().enumerate() {
            let (k, v);
            (x, k, v) = block.forward_append(x, &rope, last_only && i == last, past.as_mut().and_then(Iterator::next));
            next.blocks.push((k, v));
        }
        (fused::linear(&self.lm_head, rms_norm(x)), next)
    }

    /// Token (and timestep) embeddings, normalised: the residual stream entering the first block.
    fn embed(&self, tokens: Tensor<2, Int>, timesteps: Option<Tensor<1, Int>>) -> Tensor<3> {
        let mut x = self.token_emb.forward(tokens);
        if let (Some(emb), Some(ts)) = (&self.time_emb, timesteps) {
            x = x + emb.forward(ts.unsqueeze_dim::<2>(1));
        }
        rms_norm(x)
    }

    fn rope(&self, seq_len: usize, device: &Device) -> Rope {
        if seq_len <= self.rotary.len() {
            self.rotary.rope(seq_len, device)
        } else {
            // Longer than the context it was built for (a test's odd input): compute afresh.
            Rope::new(seq_len, self.config.head_dim(), device)
        }
    }
}
