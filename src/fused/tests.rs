use super::attention_kernel as kernel;
use super::*;
use super::plain;
use burn::tensor::Distribution;

fn random(shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.5), device)
}

fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

#[test]
fn the_fused_forward_matches_burns_attention() {
    let device = Device::flex();
    device.seed(1);
    // 19 positions: rows that are not a multiple of the softmax's 16 lanes.
    let (q, k, v) = (random([2, 3, 19, 8], &device), random([2, 3, 19, 8], &device), random([2, 3, 19, 8], &device));
    assert!(available(&q));
    for causal in [false, true] {
        let fused = attention(q.clone(), k.clone(), v.clone(), causal);
        let plain = plain::attention(q.clone(), k.clone(), v.clone(), causal);
        assert!(max_abs_diff(fused, plain) < 1e-5, "causal: {causal}");
    }
}

#[test]
fn the_fused_forward_takes_fewer_queries_than_keys() {
    let device = Device::flex();
    device.seed(4);
    let (q, k, v) = (random([1, 2, 5, 8], &device), random([1, 2, 23, 8], &device), random([1, 2, 23, 8], &device));
    for causal in [false, true] {
        let fused = attention(q.clone(), k.clone(), v.clone(), causal);
        assert_eq!(fused.dims(), [1, 2, 5, 8]);
        assert!(max_abs_diff(fused, plain::attention(q.clone(), k.clone(), v.clone(), causal)) < 1e-5, "causal: {causal}");
    }
}

#[test]
fn causal_attention_ignores_later_keys_and_values() {
    let device = Device::flex();
    device.seed(5);
    let (q, k, v) = (random([1, 2, 9, 8], &device), random([1, 2, 9, 8], &device), random([1, 2, 9, 8], &device));
    let before = attention(q.clone(), k.clone(), v.clone(), true);
    // Change the keys and values of the last three positions: rows 0..6 must not move.
    let later = |x: Tensor<4>| x.clone().slice_assign([0..1, 0..2, 6..9, 0..8], random([1, 2, 3, 8], &device));
    let after = attention(q, later(k), later(v), true);
    let rows = |x: Tensor<4>| x.narrow(2, 0, 6);
    assert_eq!(max_abs_diff(rows(before.clone()), rows(after.clone())), 0.0);
    assert!(max_abs_diff(before.narrow(2, 6, 3), after.narrow(2, 6, 3)) > 1e-3, "the last rows do see them");
}

#[test]
fn the_fused_forward_reads_strided_heads_as_the_model_passes_them() {
    let device = Device::flex();
    device.seed(2);
    // [batch, seq, heads, head_dim] seen as [batch, heads, seq, head_dim], as Attention::forward builds it.
    let x = || Tensor::<4>::random([2, 11, 3, 8], Distribution::Normal(0.0, 1.0), &device).swap_dims(1, 2);
    let (q, k, v) = (x(), x(), x());
    let fused = attention(q.clone(), k.clone(), v.clone(), false);
    let plain = plain::attention(q, k, v, false);
    assert!(max_abs_diff(fused, plain) < 1e-5);
}

#[test]
fn the_fused_backward_matches_burns_gradients() {
    // The training shape (as many queries as keys), and fewer queries than keys; both masks.
    // Inputs contiguous, and split into heads as the model does (token-major).
    for causal in [false, true] {
        for (queries, keys) in [(21, 21), (6, 21)] {
            for token_major in [false, true] {
                backward_matches([2, 3, queries, 8], [2, 3, keys, 8], causal, token_major);
            }
        }
    }
}

fn backward_matches(q_shape: [usize; 4], kv_shape: [usize; 4], causal: bool, token_major: bool) {
    let device = Device::flex().autodiff();
    device.seed(3);
    let input = |[b, h, t, d]: [usize; 4]| if token_major { random([b, t, h, d], &device).swap_dims(1, 2) } else { random([b, h, t, d], &device) };
    let inputs = [input(q_shape), input(kv_shape), input(kv_shape)];
    let weights = random(q_shape, &device);
    let grads = |f: fn(Tensor<4>, Tensor<4>, Tensor<4>, bool) -> Tensor<4>| {
        let [q, k, v] = inputs.clone().map(|x| x.detach().require_grad());
        let loss = (f(q.clone(), k.clone(), v.clone(), causal) * weights.clone()).sum();
        let g = loss.backward();
        [q, k, v].map(|x| x.grad(&g).expect("every input gets a gradient"))
    };
    let fused = grads(attention);
    let plain = grads(plain::attention);
    for (name, (f, p)) in ["q", "k", "v"].iter().zip(fused.into_iter().zip(plain)) {
        assert_close(&format!("d{name} ({q_shape:?} · {kv_shape:?}, causal {causal}, token-major {token_major})"), f, p);
    }
}

#[test]
fn in_a_bf16_training_step_attention_multiplies_on_the_tiles_within_bf16s_rounding() {
    if !amx::available() {
        eprintln!("no AMX here: attention multiplies in f32 in every step");
        return;
    }
    let device = Device::flex().autodiff();
    device.seed(7);
    // 37 positions of 24 wide: neither a multiple of the tiles' 16 or 32. Token-major, as the
    // model splits its heads.
    let input = || random([2, 37, 3, 24], &device).swap_dims(1, 2);
    let (inputs, weights) = ([input(), input(), input()], random([2, 3, 37, 24], &device));
    for causal in [false, true] {
        let run = |precision: Option<Matmul>| {
            let _guard = precision.map(Matmul::apply);
            let [q, k, v] = inputs.clone().map(|x| x.detach().require_grad());
            let y = attention(q.clone(), k.clone(), v.clone(), causal);
            let g = (y.clone() * weights.clone()).sum().backward();
            [y.inner(), q.grad(&g).unwrap(), k.grad(&g).unwrap(), v.grad(&g).unwrap()]
        };
        let (f32s, bf16s) = (run(None), run(Some(Matmul::Bf16)));
        for (what, (theirs, ours)) in ["output", "dq", "dk", "dv"].iter().zip(f32s.into_iter().zip(bf16s)) {
            let scale = theirs.clone().abs().max().into_scalar::<f32>();
            let diff = max_abs_diff(ours, theirs);
            // bf16 keeps 8 bits of each factor; the scores' error passes through the softmax.
            assert!(diff < 3e-2 * scale, "{what} (causal {causal}): differs by {diff} (largest entry {scale})");
            assert!(diff > 0.0, "{what} (causal {causal}): bf16 gave f32's exact result");
        }
    }
}

#[test]
fn the_softmax_exp_is_as_accurate_as_the_library_one() {
    let mut worst = 0.0f32;
    for i in 0..=870_000 {
        let x = -(i as f32) * 1e-4;
        let (ours, reference) = (kernel::exp(x), x.exp());
        worst = worst.max((ours - reference).abs() / reference);
    }
    assert!(worst < 3e-7, "largest relative error {worst}");
}

#[test]
fn softmax_rows_sum_to_one_and_keep_their_order() {
    let mut row: Vec<f32> = (0..37).map(|i| (i as f32 * 0.7).sin() * 9.0).collect();
    let before = row.clone();
    kernel::softmax_in_place(&mut row);
    assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    let max = before.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = before.iter().map(|x| (x - max).exp()).sum();
    for (p, x) in row.iter().zip(&before) {
        assert!((p - (x - max).exp() / total).abs() < 1e-7);
    }
}

#[test]
fn the_fused_rms_norm_matches_the_plain_one_forward_and_backward() {
    let device = Device::flex().autodiff();
    device.seed(5);
    // 70 rows (not a multiple of the rows per parallel task) of 24 (not a multiple of 8 lanes).
    let x = Tensor::<3>::random([2, 35, 24], Distribution::Normal(0.5, 2.0), &device);
    let w = Tensor::<3>::random([2, 35, 24], Distribution::Normal(0.0, 1.0), &device);
    let (y_fused, g_fused) = value_and_grad(|x| rms_norm(x, crate::model::RMS_EPS), &x, &w);
    let (y_plain, g_plain) = value_and_grad(|x| plain::rms_norm(x, crate::model::RMS_EPS), &x, &w);
    assert_close("rms_norm output", y_fused, y_plain);
    assert_close("rms_norm gradient", g_fused, g_plain);
}

#[test]
fn the_fused_rms_norm_reads_strided_input() {
    let device = Device::flex();
    device.seed(6);
    let x = Tensor::<4>::random([2, 9, 3, 16], Distribution::Normal(0.0, 1.0), &device).swap_dims(1, 2);
    let diff = (rms_norm(x.clone(), crate::model::RMS_EPS) - plain::rms_norm(x, crate::model::RMS_EPS)).abs().max().into_scalar::<f32>();
    assert!(diff < 1e-5);
}

/// Output and input gradient of `f` at `x`, with a random weighting of the output as the loss.
fn value_and_grad<const D: usize>(f: impl Fn(Tensor<D>) -> Tensor<D>, x: &Tensor<D>, weights: &Tensor<D>) -> (Tensor<D>, Tensor<D>) {
    let x = x.clone().detach().require_grad();
    let y = f(x.clone());
    let grads = (y.clone() * weights.clone()).sum().backward();
    (y.inner(), x.grad(&grads).expect("x gets a gradient"))
}

fn assert_close<const D: usize>(what: &str, a: Tensor<D>, b: Tensor<D>) {
    let scale = b.clone().abs().max().into_scalar::<f32>().max(1.0);
    let diff = (a - b).abs().max().into_scalar::<f32>();
    assert!(diff < 1e-5 * scale, "{what}: differs by {diff} (largest entry {scale})");
}

#[test]
fn the_fused_relu_squared_matches_the_plain_one_forward_and_backward() {
    let device = Device::flex().autodiff();
    device.seed(7);
    // Odd size: not a multiple of the parallel chunk; half the entries negative.
    let x = Tensor::<3>::random([3, 7, 1001], Distribution::Normal(0.0, 1.0), &device);
    let w = Tensor::<3>::random([3, 7, 1001], Distribution::Normal(0.0, 1.0), &device);
    let (y_fused, g_fused) = value_and_grad(relu_squared, &x, &w);
    let (y_plain, g_plain) = value_and_grad(plain::relu_squared, &x, &w);
    assert_close("relu² output", y_fused, y_plain);
    assert_close("relu² gradient", g_fused, g_plain);
}

#[test]
fn the_fused_rope_matches_the_plain_one_forward_and_backward() {
    let device = Device::flex().autodiff();
    device.seed(8);
    let rope_tables = crate::model::Rope::new(11, 8, &device);
    // Strided like the model's heads: [batch, seq, heads, head_dim] seen as [batch, heads, seq, head_dim].
    let x = Tensor::<4>::random([2, 11, 3, 8], Distribution::Normal(0.0, 1.0), &device).swap_dims(1, 2);
    let w = Tensor::<4>::random([2, 3, 11, 8], Distribution::Normal(0.0, 1.0), &device);
    assert!(available(&x));
    let (y_fused, g_fused) = value_and_grad(|x| rope_tables.apply(x), &x, &w);
    let (cos, sin) = rope_tables.tables();
    let (y_plain, g_plain) = value_and_grad(|x| plain::rope(x, cos.clone(), sin.clone()), &x, &w);
    assert_close("rope output", y_fused, y_plain);
    assert_close("rope gradient", g_fused, g_plain);
    // The tables of a few positions rotate those positions as the full tables do.
    let positions = Tensor::<1, Int>::from_data(TensorData::new(vec![7i64, 0, 10], [3]), &device);
    let some = rope_tables.at(&positions).apply(x.clone().select(2, positions.clone()));
    assert_close("rope at positions", some, plain::rope(x, cos, sin).select(2, positions));
}

#[test]
fn rotary_then_norm_in_one_pass_is_the_two_ops_bit_for_bit_and_trains_as_they_do() {
    let eps = crate::model::RMS_EPS;
    let device = Device::flex();
    device.seed(9);
    let rope_tables = crate::model::Rope::new(13, 8, &device);
    let (cos, sin) = rope_tables.tables();
    // Strided like the model's heads.
    let x = Tensor::<4>::random([2, 13, 3, 8], Distribution::Normal(0.0, 2.0), &device).swap_dims(1, 2);
    let one_pass = rope_rms_norm(x.clone(), cos.clone(), sin.clone(), eps);
    let two_ops = rms_norm(rope(x.clone(), cos.clone(), sin.clone()), eps);
    assert_eq!(max_abs_diff(one_pass.clone(), two_ops), 0.0, "the same arithmetic");
    assert_close("against the plain ops", one_pass, plain::rms_norm(plain::rope(x, cos, sin), eps));
    // Tracked by autodiff, the gradient is the two ops' (each keeps its own backward pass).
    let device = Device::flex().autodiff();
    device.seed(10);
    let rope_tables = crate::model::Rope::new(13, 8, &device);
    let (cos, sin) = rope_tables.tables();
    let x = Tensor::<4>::random([2, 13, 3, 8], Distribution::Normal(0.0, 2.0), &device).swap_dims(1, 2);
    let w = Tensor::<4>::random([2, 3, 13, 8], Distribution::Normal(0.0, 1.0), &device);
    // Untracked on the autodiff device (evaluation during training): the one pass.
    assert_eq!(max_abs_diff(rope_tables.apply_rms_norm(x.clone()), rms_norm(rope_tables.apply(x.clone()), eps)), 0.0);
    let (y_one, g_one) = value_and_grad(|x| rope_tables.apply_rms_norm(x), &x, &w);
    let (y_plain, g_plain) = value_and_grad(|x| plain::rms_norm(plain::rope(x, cos.clone(), sin.clone()), eps), &x, &w);
    assert_close("tracked output", y_one, y_plain);
    assert_close("tracked gradient", g_one, g_plain);
}

#[test]
fn fused_attention_with_no_queries_or_no_keys_gives_empty_or_zero_outputs_and_gradients() {
    let device = Device::flex().autodiff();
    for (queries, keys) in [(0, 5), (4, 0)] {
        let q = Tensor::<4>::ones([1, 2, queries, 8], &device).require_grad();
        let k = Tensor::<4>::ones([1, 2, keys, 8], &device).require_grad();
        let v = Tensor::<4>::ones([1, 2, keys, 8], &device).require_grad();
        let y = attention(q.clone(), k.clone(), v.clone(), false);
        assert_eq!(y.dims(), [1, 2, queries, 8]);
        let grads = (y.clone() * 2.0).sum().backward();
        assert_eq!(q.grad(&grads).map(|g| g.dims()), Some([1, 2, queries, 8]));
        if queries > 0 {
            assert_eq!(y.abs().max().into_scalar::<f32>(), 0.0);
        }
    }
}

#[test]
fn fused_norm_and_rope_accept_empty_tensors() {
    let device = Device::flex();
    let rope_tables = crate::model::Rope::new(0, 8, &device);
    assert_eq!(rope_tables.apply(Tensor::<4>::zeros([1, 2, 0, 8], &device)).dims(), [1, 2, 0, 8]);
    assert_eq!(rms_norm(Tensor::<3>::zeros([1, 0, 8], &device), crate::model::RMS_EPS).dims(), [1, 0, 8]);
    assert_eq!(rope_tables.apply_rms_norm(Tensor::<4>::zeros([1, 2, 0, 8], &device)).dims(), [1, 2, 0, 8]);
}

#[test]
fn a_training_steps_linear_layer_matches_burns_forward_and_backward() {
    let device = Device::flex().autodiff();
    device.seed(6);
    // 2 × 37 rows, 45 in, 70 out: none a multiple of the AMX tiles' 16 or 32.
    let layer = burn::nn::LinearConfig::new(45, 70).with_bias(false).init(&device);
    let x = Tensor::<3>::random([2, 37, 45], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let weights = Tensor::<3>::random([2, 37, 70], Distribution::Normal(0.0, 1.0), &device);
    // Outside a training step (no precision applied) the layer is Burn's own `Linear`.
    let run = |precision: Option<Matmul>| {
        let _guard = precision.map(Matmul::apply);
        let y = linear(&layer, x.clone());
        let grads = (y.clone() * weights.clone()).sum().backward();
        let flat = |t: Tensor<3>| t.into_data().try_to_vec::<f32>().unwrap();
        let dw = layer.weight.grad(&grads).expect("the weight gets a gradient").into_data().try_to_vec::<f32>().unwrap();
        [flat(y.inner()), flat(x.grad(&grads).expect("x gets a gradient")), dw]
    };
    let burn = run(None);
    let close = |precision: Matmul, tolerance: f32| {
        for ((what, ours), theirs) in ["output", "input gradient", "weight gradient"].iter().zip(run(Some(precision))).zip(&burn) {
            let scale = theirs.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let diff = ours.iter().zip(theirs).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(diff <= tolerance * scale, "{precision:?} {what}: differs by {diff} (largest entry {scale})");
            // bf16 rounding must show: equal results would mean the tiles were not used.
            assert!(precision == Matmul::F32 || diff > 0.0, "{what}: bf16 gave f32's exact result");
        }
    };
    close(Matmul::F32, 1e-5);
    if amx::available() {
        // bf16 keeps 8 bits of each factor: products are off by up to 2⁻⁸ of their size.
        close(Matmul::Bf16, 2e-2);
    }
}

#[test]
fn attention_writes_its_output_in_the_order_the_output_projection_reads() {
    use super::heads::HeadsLayout;
    use burn_flex::FlexTensor;
    // The model's head split: a linear layer's [batch, seq, heads · head_dim] output seen as heads.
    let split = |seed: usize| {
        let data: Vec<f32> = (0..2 * 7 * 3 * 8).map(|i| ((i * 37 + seed * 11) % 23) as f32 / 23.0 - 0.5).collect();
        FlexTensor::from_data(TensorData::new(data, [2, 7, 3, 8])).transpose(1, 2)
    };
    let (q, k, v) = (split(1), split(2), split(3));
    assert_eq!(HeadsLayout::of(&q), HeadsLayout::TokenMajor);
    let (out, _) = attention::forward(&q, &k, &v, false, false);
    assert_eq!(HeadsLayout::of(&out), HeadsLayout::TokenMajor);
    // Merging the heads back is then free: the buffer is already [batch, seq, heads · head_dim].
    let merged = out.transpose(1, 2);
    assert!(merged.is_contiguous(), "no copy before the output projection");
    let contiguous = [q, k, v].map(|x| x.to_contiguous());
    assert_eq!(HeadsLayout::of(&contiguous[0]), HeadsLayout::HeadMajor);
    let (from_contiguous, _) = attention::forward(&contiguous[0], &contiguous[1], &contiguous[2], false, false);
    assert_eq!(from_contiguous.to_contiguous().into_data().try_to_vec::<f32>().unwrap(), merged.transpose(1, 2).to_contiguous().into_data().try_to_vec::<f32>().unwrap());
}

#[test]
fn outside_training_any_row_count_gives_burns_linear() {
    let device = Device::flex();
    device.seed(7);
    // 40 in, 65 out: the last column block is ragged, as the head's (the vocabulary) is. Up to 64
    // rows go through the unpacked kernel where the CPU has a tile, more on a Zen 4 only (else
    // gemm).
    let layer = burn::nn::LinearConfig::new(40, 65).with_bias(false).init(&device);
    for rows in [1, 7, unpacked::FEW_ROWS, unpacked::FEW_ROWS + 1, 256] {
        let x = Tensor::<3>::random([1, rows, 40], Distribution::Normal(0.0, 1.0), &device);
        let (ours, theirs) = (linear(&layer, x.clone()), layer.forward(x));
        let diff = (ours - theirs).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "{rows} rows: {diff}");
    }
}

/// The attention's three projections of `x` through the one op (`[q, k, v]`, each
/// `[batch, heads, seq, head_dim]`), called directly: `projections` would take the separate ops
/// for tracked weights.
fn one_op_projections(x: Tensor<3>, layers: &[Linear; 3], heads: usize, rope: &crate::model::Rope) -> [Tensor<4>; 3] {
    let [b, t, _] = x.dims();
    let (cos, sin) = rope.tables();
    let [w_q, w_k, w_v] = [0, 1, 2].map(|i| layers[i].weight.val().into_dispatch());
    let eps = crate::model::RMS_EPS as f32;
    let stacked = <Dispatch as FusedProjections>::fused_projections(x.into_dispatch(), w_q, w_k, w_v, cos.into_dispatch(), sin.into_dispatch(), heads, eps);
    let stacked = Tensor::<4>::from_dispatch(stacked);
    let width = stacked.dims()[3];
    [0, 1, 2].map(|i| stacked.clone().narrow(0, i, 1).reshape([b, t, heads, width / heads]).swap_dims(1, 2))
}

/// The same through the separate ops: three linear layers, then rotary + norm for two of them.
fn separate_projections(x: Tensor<3>, layers: &[Linear; 3], heads: usize, rope: &crate::model::Rope) -> [Tensor<4>; 3] {
    let [b, t, _] = x.dims();
    let [q, k, v] = [0, 1, 2].map(|i| {
        let y = linear(&layers[i], x.clone());
        let width = y.dims()[2];
        y.reshape([b, t, heads, width / heads]).swap_dims(1, 2)
    });
    [rope.apply_rms_norm(q), rope.apply_rms_norm(k), v]
}

#[test]
fn the_three_projections_in_one_op_are_the_separate_ops_bit_for_bit_and_train_as_they_do() {
    use burn::nn::LinearConfig;
    // 2 × 40 rows: more than a few, so the one op splits rows between threads; both sides multiply
    // through the kernel `linear` picks for 80 rows (the unpacked tile with AVX-512, else gemm).
    let (b, t, d, heads) = (2, 40, 32, 2);
    let setup = |device: &Device| {
        let layers = [0, 1, 2].map(|_| LinearConfig::new(d, d).with_bias(false).init(device));
        let x = Tensor::<3>::random([b, t, d], Distribution::Normal(0.0, 1.0), device);
        (layers, x, crate::model::Rope::new(t, d / heads, device))
    };
    let device = Device::flex();
    device.seed(11);
    let (layers, x, rope) = setup(&device);
    // In f32, and in bf16 on the AMX tiles where the CPU has them (`--matmul bf16`): there the one
    // op packs each thread's rows once for the three products.
    let mut precisions = vec![None];
    if amx::available() {
        precisions.push(Some(Matmul::Bf16));
    }
    for precision in precisions {
        let _precision = precision.map(Matmul::apply);
        let one = one_op_projections(x.clone(), &layers, heads, &rope);
        let separate = separate_projections(x.clone(), &layers, heads, &rope);
        let split = |y: Tensor<3>| y.reshape([b, t, heads, d / heads]).swap_dims(1, 2);
        let through_api = projections(x.clone(), [&layers[0], &layers[1], &layers[2]], heads, rope.tables().0, rope.tables().1, crate::model::RMS_EPS)
            .expect("the one op serves 80 rows on burn-flex")
            .map(split);
        for (i, ((one, separate), api)) in one.into_iter().zip(separate).zip(through_api).enumerate() {
            assert_eq!(one.dims(), [b, heads, t, d / heads]);
            assert_eq!(max_abs_diff(one.clone(), separate), 0.0, "projection {i} ({precision:?}): the same arithmetic");
            assert_eq!(max_abs_diff(one, api), 0.0, "projection {i} ({precision:?}) through `projections`");
        }
    }
    // Tracked by autodiff: the separate ops' outputs and gradients.
    let device = Device::flex().autodiff();
    device.seed(12);
    let (layers, x, rope) = setup(&device);
    let x = x.require_grad();
    let w = [0, 1, 2].map(|_| Tensor::<4>::random([b, heads, t, d / heads], Distribution::Normal(0.0, 1.0), &device));
    let loss = |outputs: [Tensor<4>; 3]| outputs.into_iter().zip(w.clone()).map(|(y, w)| (y * w).sum()).reduce(|a, b| a + b).expect("three terms");
    let grads_one = loss(one_op_projections(x.clone(), &layers, heads, &rope)).backward();
    let grads_separate = loss(separate_projections(x.clone(), &layers, heads, &rope)).backward();
    let grad = |g| x.grad(g).expect("x gets a gradient").unsqueeze::<4>();
    assert_close("input gradient", grad(&grads_one), grad(&grads_separate));
    for (i, layer) in layers.iter().enumerate() {
        let g = |grads| layer.weight.grad(grads).expect("the weight gets a gradient").unsqueeze::<4>();
        assert_close(&format!("weight {i} gradient"), g(&grads_one), g(&grads_separate));
    }
}

#[test]
fn the_mlp_layer_squared_in_place_is_the_two_ops_bit_for_bit_and_trains_as_they_do() {
    use burn::nn::LinearConfig;
    let device = Device::flex();
    device.seed(13);
    let layer = LinearConfig::new(24, 40).with_bias(false).init(&device);
    // A few rows (the unpacked kernel wherever it runs) and many (gemm unless the CPU has AVX-512).
    for rows in [3, 90] {
        let x = Tensor::<3>::random([1, rows, 24], Distribution::Normal(0.0, 1.0), &device);
        let one = linear_relu_squared(&layer, x.clone());
        let two = relu_squared(linear(&layer, x));
        assert_eq!((one - two).abs().max().into_scalar::<f32>(), 0.0, "{rows} rows");
    }
    let device = Device::flex().autodiff();
    device.seed(14);
    let layer = LinearConfig::new(24, 40).with_bias(false).init(&device);
    let x = Tensor::<3>::random([1, 90, 24], Distribution::Normal(0.0, 1.0), &device);
    let w = Tensor::<3>::random([1, 90, 40], Distribution::Normal(0.0, 1.0), &device);
    let (y_one, g_one) = value_and_grad(|x| linear_relu_squared(&layer, x), &x, &w);
    let (y_two, g_two) = value_and_grad(|x| plain::relu_squared(layer.forward(x)), &x, &w);
    assert_close("tracked output", y_one, y_two);
    assert_close("tracked gradient", g_one, g_two);
}

#[test]
fn a_computation_that_panics_on_its_own_pool_reaches_its_caller_and_leaves_the_pool_working() {
    // The pool's other workers look for work while the computation runs; a panic inside must end
    // the computation for its caller, and the next one on the same thread's pool must run.
    use rayon::prelude::*;
    let result = std::panic::catch_unwind(|| {
        on_own_pool(|| {
            let sum: u64 = (0..1000u64).into_par_iter().sum();
            panic!("a computation that fails after a parallel op ({sum})");
        })
    });
    assert!(result.is_err());
    // The same thread's pool still serves the next computation.
    assert_eq!(on_own_pool(|| (0..1000u64).into_par_iter().sum::<u64>()), 499_500);
}

#[test]
fn gram_multiplies_half_the_blocks_and_mirrors_the_rest_into_the_full_product() {
    // 150 columns: two whole blocks and a ragged one; 20: less than one block.
    for (k, m) in [(70, 150), (33, 20), (0, 5)] {
        let x: Vec<f32> = (0..k * m).map(|i| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5).collect();
        let expected = |i: usize, j: usize| (0..k).map(|p| x[p * m + i] as f64 * x[p * m + j] as f64).sum::<f64>();
        let run = |precision: Option<Matmul>| {
            let _guard = precision.map(Matmul::apply);
            let mut c = vec![f32::NAN; m * m];
            on_own_pool(|| gram(k, m, &x, &mut c));
            c
        };
        let mut precisions = vec![(None, 1e-5), (Some(Matmul::F32), 1e-5)];
        if amx::available() {
            precisions.push((Some(Matmul::Bf16), 2e-2));
        }
        for (precision, tolerance) in precisions {
            let c = run(precision);
            for i in 0..m {
                for j in 0..m {
                    let (got, want) = (c[i * m + j], expected(i, j));
                    assert!((got as f64 - want).abs() <= tolerance * (1.0 + want.abs()), "{k}×{m} ({precision:?}): c[{i}, {j}] = {got}, want {want}");
                    // The mirrored blocks are copies; the diagonal ones sum the same products in the
                    // same order on both sides (checked in f32: AMX was not at hand to check).
                    if precision != Some(Matmul::Bf16) {
                        assert_eq!(got.to_bits(), c[j * m + i].to_bits(), "{k}×{m} ({precision:?}): not symmetric at ({i}, {j})");
                    }
                }
            }
        }
    }
}

#[test]
fn transpose_moves_every_element_across_the_tiles() {
    let (rows, cols) = (37, 53);
    let x: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
    let t = transpose(&x, rows, cols);
    for i in 0..rows {
        for j in 0..cols {
            assert_eq!(t[j * rows + i], x[i * cols + j], "({i}, {j})");
        }
    }
}

#[test]
fn inference_in_bf16_keeps_each_weight_packed_and_multiplies_as_a_fresh_packing_does() {
    if !amx::available() {
        eprintln!("no AMX here: inference multiplies in f32");
        return;
    }
    let device = Device::flex();
    device.seed(8);
    let layers: Vec<Linear> = (0..2).map(|_| burn::nn::LinearConfig::new(45, 70).with_bias(false).init(&device)).collect();
    let x = Tensor::<3>::random([2, 37, 45], Distribution::Normal(0.0, 1.0), &device);
    let flat = |t: Tensor<3>| t.into_data().try_to_vec::<f32>().unwrap();
    let _guard = Matmul::Bf16.apply();
    // Twice over both layers: the second round multiplies by the weights kept from the first.
    for round in 0..2 {
        for (i, layer) in layers.iter().enumerate() {
            let (xs, w) = (flat(x.clone()), layer.weight.val().into_data().try_to_vec::<f32>().unwrap());
            let fresh = product(74, 70, 45, Mat::rows(&xs, 45), Mat::rows(&w, 70));
            assert_eq!(flat(linear(layer, x.clone())), fresh, "layer {i}, round {round}");
        }
    }
}
