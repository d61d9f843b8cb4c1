//! The command line as a script would use it: stdout, stderr and exit codes.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tiny-diffusion")).args(args).output().expect("run the binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn generate_with_the_shipped_model_prints_exactly_the_requested_length() {
    let o = run(&["generate", "--prompt", "ROMEO:", "--length", "200", "--strategy", "steps", "--steps", "16", "--remask", "none", "--polish", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let text = text.strip_suffix('\n').unwrap();
    assert_eq!(text.chars().count(), 200);
    assert!(text.starts_with("ROMEO:"));
    assert!(stderr(&o).contains("16 steps"), "stats go to stderr: {}", stderr(&o));
}

#[test]
fn gaps_are_filled_and_nothing_else_changes() {
    let prompt = "To be, or not to be: ____ is the question.\nWhether 'tis nobler in the _____ to suffer";
    let o = run(&["generate", "--prompt", prompt, "--seed", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let out = out.strip_suffix('\n').unwrap();
    assert_eq!(out.chars().count(), prompt.chars().count());
    for (p, g) in prompt.chars().zip(out.chars()) {
        if p == '_' {
            assert_ne!(g, '_');
        } else {
            assert_eq!(p, g, "{out}");
        }
    }
}

#[test]
fn same_seed_same_output() {
    let args = ["generate", "--length", "64", "--seed", "9", "--temperature", "1.0"];
    assert_eq!(stdout(&run(&args)), stdout(&run(&args)));
}

#[test]
fn bad_input_is_a_clear_error_with_a_nonzero_exit() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let file = file.path().to_str().unwrap();
    let cases: [(&[&str], &str); 25] = [
        // The TUI's options work without naming the `tui` command.
        (&["--checkpoint", "/nonexistent/ck"], "does not exist"),
        (&["import", "/nonexistent/model.pt", "--out", "/tmp/never"], "does not exist"),
        (&["generate", "--prompt", "héllo {"], "not in the model's vocabulary"),
        (&["generate", "--checkpoint", "/nonexistent/ck"], "does not exist"),
        (&["generate", "--threshold", "1.5"], "--threshold"),
        (&["generate", "--prompt", "ROMEO:", "--length", "3"], "shorter than the prompt"),
        (&["train", "--data", "/nonexistent/text.txt", "--out", "/tmp/never"], "or leave out --data to train on Tiny Shakespeare (built in)"),
        (&["train", "--muon-lr", "nan", "--out", "/tmp/never"], "--muon-lr"),
        (&["train", "--preset", "tiny", "--steps", "100000", "--out", file], "is a file, not a directory"),
        (&["generate", "--overlap", "256"], "--overlap must be less than the model's context: 0 to 255"),
        (&["generate", "--record", "/tmp/never.png"], "FILE.cast (asciicast v2) or FILE.gif"),
        (&["train", "--time", "3 hours", "--out", "/tmp/never"], "write e.g. 3h, 90m"),
        (&["train", "--time", "1h", "--steps", "100", "--out", "/tmp/never"], "cannot be used with"),
        (&["train", "--batch", "100000", "--out", "/tmp/never"], "invalid value '100000' for '--batch <N>': must be between 1 and 1024"),
        (&["train", "--init", "shipped", "--layers", "2", "--out", "/tmp/never"], "cannot be used with"),
        (&["generate", "--prompt", "To be _* not", "--max-gap", "100000"], "--max-gap is at most 128"),
        (&["bench", "--cases", "train", "--batch", "0"], "--batch must be between 1 and 1024"),
        (&["bench", "--cases", "render", "--runs", "100000000"], "--runs must be between 1 and 1000"),
        (&["bench", "--cases", "render", "--peak-gflops", "0"], "--peak-gflops must be a positive number"),
        (&["bench", "decode", "--length", "0"], "--length must be between 1 and 100000"),
        (&["bench", "decode", "--length", "100000000"], "--length must be between 1 and 100000"),
        (&["bench", "infill", "--lines", "0"], "--lines must be between 1 and 1000"),
        (&["compare", "--length", "100000000"], "--length must be between 1 and 10000"),
        (&["compare", "--length", "0"], "--length must be between 1 and 10000"),
        (&["import", "tests/fixtures/pytorch/v2.pt", "--heads", "5", "--out", "/tmp/never"], "not divisible by n_head 5: PyTorch files do not store the head count (5 used)"),
    ];
    for (args, expect) in cases {
        let o = run(args);
        assert!(!o.status.success(), "{args:?} should fail");
        let err = stderr(&o);
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
}

#[test]
fn init_from_a_checkpoint_without_weights_names_the_missing_file_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/checkpoints/shipped/config.json")).unwrap();
    std::fs::create_dir(dir.path().join("half")).unwrap();
    std::fs::write(dir.path().join("half/config.json"), config).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tiny-diffusion"))
        .args(["train", "--init", "half", "--steps", "2", "--out", "run"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains("--init half") && err.contains("model.safetensors"), "{err}");
    assert!(!dir.path().join("run/config.json").exists(), "no checkpoint is written");
}

#[test]
fn trace_writes_one_json_line_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    let o = run(&["generate", "--length", "40", "--strategy", "topk", "--per-step", "8", "--remask", "none", "--polish", "0", "--trace", trace.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5, "40 characters at 8 per step");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["step"], i + 1);
        assert_eq!(line["decoded_now"].as_array().unwrap().len(), 8);
        assert_eq!(line["text"].as_str().unwrap().chars().count(), 40);
    }
}

#[test]
fn trace_carries_each_positions_belief_and_greedy_draws_match_their_top_candidate() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    let o = run(&["generate", "--prompt", "ROMEO:", "--length", "48", "--temperature", "0", "--trace", trace.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&trace).unwrap();
    let (mut drawn, mut looked) = (0, 0);
    for line in text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()) {
        let (top, entropy) = (line["top"].as_array().unwrap(), line["entropy"].as_array().unwrap());
        assert_eq!(top.len(), 48, "one entry per position of the window");
        assert_eq!(entropy.len(), 48);
        for i in 0..48 {
            let prompt = line["prompt"][i].as_bool().unwrap();
            assert_eq!(top[i].is_null(), entropy[i].is_null());
            assert!(!prompt || top[i].is_null(), "the model is not asked about the prompt");
            let Some(candidates) = top[i].as_array() else { continue };
            let p: Vec<f64> = candidates.iter().map(|c| c[1].as_f64().unwrap()).collect();
            assert!(p.len() <= 5 && !p.is_empty() && p.windows(2).all(|w| w[0] >= w[1]), "{p:?}");
            assert!(p.iter().sum::<f64>() <= 1.0 + 1e-6);
            assert!(entropy[i].as_f64().unwrap() >= 0.0);
        }
        looked += line["looked_now"].as_array().unwrap().len();
        for i in line["decoded_now"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as usize) {
            // Polish passes rewrite to the likeliest too, so every drawn character is the top one.
            let best = &top[i][0];
            let written = line["text"].as_str().unwrap().chars().nth(i).unwrap();
            assert_eq!(best[0].as_str().unwrap().chars().next().unwrap(), written, "step {}: position {i}", line["step"]);
            assert!((best[1].as_f64().unwrap() - line["confidence"][i].as_f64().unwrap()).abs() < 1e-6);
            drawn += 1;
        }
    }
    assert!(drawn >= 42 && looked >= drawn, "{drawn} drawn, {looked} looked at");
}

#[test]
fn train_in_an_empty_directory_uses_the_built_in_corpus_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tiny-diffusion"))
        .args(["train", "--preset", "tiny", "--steps", "30", "--out", "ck"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("Tiny Shakespeare (built in)"), "{}", stderr(&o));
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("ck/config.json")).unwrap()).unwrap();
    assert_eq!(config["training"]["steps"], 30);
    assert_eq!(config["training"]["data_file"], "Tiny Shakespeare (built in)");
    assert_eq!(config["training"]["data_sha256"], "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed");

    // Resuming with flags that would change the model's shape is refused before any work.
    for flags in [&["--preset", "base"][..], &["--width", "128"]] {
        let o = Command::new(env!("CARGO_BIN_EXE_tiny-diffusion"))
            .args(["train", "--steps", "60", "--out", "ck", "--resume"])
            .args(flags)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!o.status.success(), "{flags:?}");
        assert!(stderr(&o).contains("leave") && stderr(&o).contains(flags[0]), "{}", stderr(&o));
    }

    // How the step multiplies is recorded (bf16 by default, on CPUs with AMX tiles) and may
    // change on resume.
    assert_eq!(config["training"]["settings"]["matmul"], "bf16");
    let o = Command::new(env!("CARGO_BIN_EXE_tiny-diffusion"))
        .args(["train", "--steps", "40", "--out", "ck", "--resume", "--matmul", "f32"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("ck/config.json")).unwrap()).unwrap();
    assert_eq!((config["training"]["steps"].as_u64(), config["training"]["settings"]["matmul"].as_str()), (Some(40), Some("f32")));

    // --time turns a counted run into a timed one that counts the time already trained (and,
    // with validation only at the end, still validates there); --steps turns it back.
    let budget = config["training"]["wall_seconds"].as_f64().unwrap() + 0.5;
    let o = Command::new(env!("CARGO_BIN_EXE_tiny-diffusion"))
        .args(["train", "--out", "ck", "--resume", "--eval-every", "0", "--time", &format!("{budget}")])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success() && stderr(&o).contains("validation:") && stderr(&o).contains("s trained)"), "{}", stderr(&o));
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("ck/config.json")).unwrap()).unwrap();
    let (steps, settings) = (config["training"]["steps"].as_u64().unwrap(), &config["training"]["settings"]);
    assert!(steps > 40 && config["training"]["wall_seconds"].as_f64().unwrap() >= budget, "{config}");
    // serde_json reads floats back to within an ulp, not always exactly.
    assert!((settings["time_budget"].as_f64().unwrap() - budget).abs() < 1e-9 && settings["steps"].as_u64() == Some(0), "{settings}");
    let o = Command::new(env!("CARGO_BIN_EXE_tiny-diffusion"))
        .args(["train", "--out", "ck", "--resume", "--steps", &format!("{}", steps + 5)])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("ck/config.json")).unwrap()).unwrap();
    assert_eq!(config["training"]["steps"].as_u64(), Some(steps + 5));
    assert!(config["training"]["settings"]["time_budget"].is_null(), "{config}");
}

#[test]
fn training_killed_at_random_moments_always_leaves_a_loadable_checkpoint_that_never_goes_back() {
    use rand::{RngExt, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("text.txt");
    std::fs::write(&data, &tiny_diffusion::data::TINY_SHAKESPEARE[..20_000]).unwrap();
    let out = dir.path().join("ck");
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let mut last_steps = 0;
    for kill in 0..5 {
        let mut args = vec!["train", "--preset", "tiny", "--steps", "1000000", "--batch", "4", "--seq-len", "32"];
        args.extend(["--save-every", "1", "--eval-every", "0", "--sample-every", "0"]);
        args.extend(["--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        if out.join("config.json").exists() {
            args.push("--resume");
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_tiny-diffusion"))
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(rng.random_range(300..1500)));
        child.kill().unwrap(); // SIGKILL: no handler runs
        child.wait().unwrap();
        if !out.join("config.json").exists() {
            assert_eq!(last_steps, 0, "kill {kill}: a checkpoint disappeared");
            continue;
        }
        let (config, _) = tiny_diffusion::checkpoint::load(&out, &burn::prelude::Device::flex())
            .unwrap_or_else(|e| panic!("kill {kill}: the checkpoint does not load: {e:#}"));
        let settings = tiny_diffusion::train::TrainSettings::for_preset(tiny_diffusion::model::Preset::Tiny);
        let optimizer = settings.optimizer();
        let resumable = tiny_diffusion::checkpoint::load_resumable(&out, &burn::prelude::Device::flex().autodiff(), optimizer);
        assert!(resumable.is_ok(), "kill {kill}: the optimizer state does not load: {:?}", resumable.err());
        assert!(config.training.steps >= last_steps, "kill {kill}: steps went back from {last_steps} to {}", config.training.steps);
        last_steps = config.training.steps;
    }
    assert!(last_steps > 0, "no run lived long enough to save");
}

#[test]
fn a_huge_length_streams_its_output_in_memory_that_does_not_grow() {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tiny-diffusion"))
        .args(["generate", "--length", "1000000000", "--strategy", "steps", "--steps", "2", "--polish", "0", "--cache"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = vec![0u8; 2000];
    stdout.read_exact(&mut first).expect("output arrives while the run goes on");
    let rss_mib = |pid: u32| -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
    };
    let early = rss_mib(child.id());
    let mut more = vec![0u8; 20_000];
    stdout.read_exact(&mut more).unwrap();
    let later = rss_mib(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(String::from_utf8_lossy(&first).chars().any(|c| c.is_alphabetic()));
    // The old code held 10⁹ ids (and their flags) before printing anything: gigabytes.
    assert!(early < 400.0 && later < early + 50.0, "resident memory {early:.0} MiB, then {later:.0} MiB");
}

/// Generates 120 characters with seed 3, recorded to `path`; returns the step count it reports.
fn record(path: &std::path::Path) -> usize {
    let o = run(&["generate", "--length", "120", "--seed", "3", "--record", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    stderr(&o).split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn record_writes_an_asciicast_that_shows_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("run.cast");
    let steps = record(&cast);
    let text = std::fs::read_to_string(&cast).unwrap();
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert!(header["title"].as_str().unwrap().contains("seed 3"));
    let events: Vec<serde_json::Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), steps + 1, "a screen per step, then the hold");
    let times: Vec<f64> = events.iter().map(|e| e[0].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn record_writes_a_gif_with_a_frame_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.gif");
    let steps = record(&path);
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut decoder = options.read_info(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(decoder.width() % 16, 0, "whole 16-pixel cells");
    let mut frames = 0;
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        assert!(frame.palette.as_ref().is_some_and(|p| p.len() <= 256 * 3));
        frames += 1;
    }
    assert_eq!(frames, steps, "one frame per denoising step");
    assert!(std::fs::metadata(&path).unwrap().len() < 2_000_000);
}

#[test]
fn an_autoregressive_model_trains_writes_is_judged_and_races() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_tiny-diffusion");
    let run_in = |args: &[&str]| Command::new(bin).args(args).current_dir(dir.path()).output().unwrap();
    let o = run_in(&["train", "--kind", "ar", "--preset", "tiny", "--steps", "40", "--out", "ar"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("next-character cross-entropy"), "{}", stderr(&o));
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("ar/config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["kind"], "ar");

    let o = run_in(&["train", "--kind", "masked", "--steps", "60", "--out", "ar", "--resume"]);
    assert!(!o.status.success() && stderr(&o).contains("--kind"), "{}", stderr(&o));
    let o = run_in(&["train", "--layers", "3", "--steps", "60", "--out", "ar", "--resume"]);
    assert!(!o.status.success() && stderr(&o).contains("--layers 3 does not match the checkpoint"), "{}", stderr(&o));

    let o = run_in(&["generate", "--checkpoint", "ar", "--prompt", "ROMEO:", "--length", "50"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("ROMEO:") && stdout(&o).trim_end_matches('\n').chars().count() == 50, "{}", stdout(&o));
    assert!(stderr(&o).contains("1.00 characters/step"), "{}", stderr(&o));
    let o = run_in(&["generate", "--checkpoint", "ar", "--prompt", "RO_EO:"]);
    assert!(!o.status.success() && stderr(&o).contains("cannot see text to the right of a gap"), "{}", stderr(&o));

    let o = run_in(&["eval", "--checkpoint", "ar", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let (generated, held_out) = (report["judge"]["generated_nll"].as_f64().unwrap(), report["judge"]["held_out_nll"].as_f64().unwrap());
    assert!(held_out > 0.5 && held_out < 2.2, "the shipped judge on Shakespeare: {held_out}");
    assert!(generated > held_out, "40 steps of training write worse than Shakespeare: {generated} vs {held_out}");
    assert!(report["val_loss"].as_f64().unwrap() > 0.0);

    let o = run_in(&["compare", "--print", "--checkpoint", "ar", "--length", "40", "--prompt", "KING"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("── autoregressive · ar ──\nKING"), "{out}");
    let row = out.lines().find(|l| l.starts_with("autoregressive · ar")).expect("a scoreboard row");
    assert_eq!(row.split_whitespace().nth(3), Some("36"), "36 characters, one pass each: {row}");
}

#[test]
fn an_elastic_gap_gets_the_length_the_judge_chooses_and_nothing_else_changes() {
    let (before, after) = ("ROMEO:\nBut soft, what light through yonder ", " breaks?\nIt is the east.");
    let o = run(&["generate", "--prompt", &format!("{before}_*{after}"), "--max-gap", "8", "--seed", "1", "--length-search"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let out = out.strip_suffix('\n').unwrap();
    assert!(out.starts_with(before) && out.ends_with(after), "{out:?}");
    let fill = &out[before.len()..out.len() - after.len()];
    assert!(fill.chars().count() <= 8 && !fill.contains('_'), "{fill:?}");
    assert!(stderr(&o).contains(&format!("elastic gap 1: {} characters", fill.chars().count())), "{}", stderr(&o));
}

#[test]
fn an_elastic_gap_that_closes_leaves_the_prompt_without_it_not_a_continuation() {
    // --max-gap 0 leaves length 0 as the only candidate, searched or grown.
    for search in [true, false] {
        let mut args = vec!["generate", "--prompt", "To be, or _* to be", "--max-gap", "0", "--seed", "1"];
        args.extend(search.then_some("--length-search"));
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "To be, or  to be\n");
        assert!(stderr(&o).contains(": 0 characters"), "{}", stderr(&o));
    }
}

#[test]
fn a_config_json_that_does_not_match_its_weights_is_refused_by_field_before_anything_is_allocated() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints/shipped");
    let dir = tempfile::tempdir().unwrap();
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(shipped.join("config.json")).unwrap()).unwrap();
    let v = &config["model"]["vocab_size"];
    let wider = format!("config.json's n_embd does not match the weights: tensor 'token_emb.weight' is [{v}, 256], config.json implies [{v}, 512]");
    for (field, value, expect) in [
        ("n_embd", 1_000_000_000u64, "n_embd 1000000000 is over this program's limit of 4096"),
        ("n_embd", 512, wider.as_str()),
        ("n_layer", 7, "the weights have no tensor 'blocks.6.attn.c_q.weight'"),
        ("n_layer", 5, "the weights hold tensor 'blocks.5."),
        ("n_timesteps", 128, "the weights have no tensor 'time_emb.weight'"),
    ] {
        let mut config = config.clone();
        config["model"][field] = value.into();
        let ck = dir.path().join(format!("{field}-{value}"));
        std::fs::create_dir(&ck).unwrap();
        std::fs::write(ck.join("config.json"), config.to_string()).unwrap();
        std::fs::copy(shipped.join("model.safetensors"), ck.join("model.safetensors")).unwrap();
        let o = run(&["generate", "--checkpoint", ck.to_str().unwrap(), "--length", "10"]);
        assert!(!o.status.success(), "{field} {value}");
        assert!(stderr(&o).contains(expect), "{field} {value}: {}", stderr(&o));
    }
}

#[test]
fn life_refuses_a_grid_too_small_and_a_model_that_cannot_fill_cells() {
    let o = run(&["life", "--width", "1", "--height", "8"]);
    assert!(!o.status.success() && stderr(&o).contains("--width and --height must be between 3 and 200"), "{}", stderr(&o));
    let o = run(&["life", "--checkpoint", concat!(env!("CARGO_MANIFEST_DIR"), "/checkpoints/shipped-ar")]);
    assert!(!o.status.success() && stderr(&o).contains("needs a masked-diffusion model"), "{}", stderr(&o));
}

#[test]
fn a_model_taught_the_length_states_grows_an_elastic_gap_itself() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_tiny-diffusion");
    let run_in = |args: &[&str]| Command::new(bin).args(args).current_dir(dir.path()).output().unwrap();
    let config = |d: &str| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(dir.path().join(d).join("config.json")).unwrap()).unwrap() };
    // A plain model, then the same weights fine-tuned with the states added.
    let o = run_in(&["train", "--preset", "tiny", "--steps", "2", "--out", "plain"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(config("plain")["model"].get("edits").is_none(), "a plain checkpoint reads as before");
    let o = run_in(&["train", "--init", "plain", "--edits", "--steps", "3", "--out", "grown"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (plain, grown) = (config("plain"), config("grown"));
    assert_eq!(grown["model"]["edits"], true);
    assert_eq!(grown["model"]["vocab_size"].as_u64().unwrap(), plain["model"]["vocab_size"].as_u64().unwrap() + 2);
    assert_eq!(grown["training"]["steps"], 3, "a fine-tuning run counts its own steps");
    assert_eq!(grown["training"]["settings"]["init"], "plain");
    // One from scratch has them too.
    let o = run_in(&["train", "--preset", "tiny", "--edits", "--steps", "2", "--out", "fresh"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(config("fresh")["model"]["vocab_size"], grown["model"]["vocab_size"]);
    let o = run_in(&["train", "--out", "plain", "--resume", "--edits", "--steps", "4"]);
    assert!(!o.status.success() && stderr(&o).contains("--init"), "{}", stderr(&o));

    // The gap is grown by the model, within --max-gap; the text around it stays.
    let (before, after) = ("ROMEO: But soft, what ", " through yonder window");
    let o = run_in(&["generate", "--checkpoint", "grown", "--prompt", &format!("{before}_*2{after}"), "--max-gap", "6", "--seed", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let out = out.strip_suffix('\n').unwrap();
    assert!(out.starts_with(before) && out.ends_with(after), "{out:?}");
    let fill = out[before.len()..out.len() - after.len()].chars().count();
    assert!(fill <= 6, "{out:?}");
    assert!(stderr(&o).contains("grown by the model in") && stderr(&o).contains(&format!(": {fill} characters")), "{}", stderr(&o));
    // A recording shows every step of the growing: a screen each, then the hold.
    let cast = dir.path().join("grow.cast");
    let o = run_in(&["generate", "--checkpoint", "grown", "--prompt", &format!("{before}_*2{after}"), "--max-gap", "6", "--seed", "3", "--record", cast.to_str().unwrap()]);
    let steps: usize = stderr(&o).split(" in ").nth(1).and_then(|s| s.split_whitespace().next()).and_then(|n| n.parse().ok()).expect("the steps the growing took");
    let events = std::fs::read_to_string(&cast).unwrap().lines().count() - 1;
    assert_eq!(events, steps + 1, "{}", stderr(&o));
    // The judge's search is still there for it.
    let o = run_in(&["generate", "--checkpoint", "grown", "--prompt", &format!("{before}_*{after}"), "--max-gap", "3", "--length-search"]);
    assert!(o.status.success() && stderr(&o).contains("elastic gap 1:"), "{}", stderr(&o));
    // Normal decoding never writes a length state.
    let o = run_in(&["generate", "--checkpoint", "grown", "--length", "60", "--seed", "1"]);
    assert!(o.status.success() && !stdout(&o).contains('_') && stdout(&o).trim_end_matches('\n').chars().count() == 60, "{:?}", stdout(&o));
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // As `tiny-diffusion bench | head -1` does once head has read its line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tiny-diffusion"))
        .args(["bench", "--cases", "render", "--runs", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the binary");
    drop(child.stdout.take());
    let o = child.wait_with_output().expect("wait for the binary");
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn bench_times_training_in_the_precision_asked_for() {
    let ids = |matmul: &str| -> Vec<String> {
        let o = run(&["bench", "--preset", "tiny", "--batch", "2", "--cases", "train", "--runs", "1", "--json", "--matmul", matmul]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["case"].as_str().map(String::from)).collect()
    };
    // In f32 every row is f32, under the ids the PyTorch twin's f32 rows have.
    let f32_rows = ids("f32");
    for id in ["tiny/train_2x64", "tiny/train_2x64_muon", "tiny/train_2x64_muon_ar"] {
        assert!(f32_rows.iter().any(|r| r == id), "{id} missing from {f32_rows:?}");
    }
    assert!(!f32_rows.iter().any(|r| r.ends_with("_muon_f32")), "{f32_rows:?}");
    // In bf16 the same rows; the f32 Muon row beside them only where the CPU has AMX tiles.
    let bf16_rows = ids("bf16");
    assert!(bf16_rows.iter().any(|r| r == "tiny/train_2x64_muon"), "{bf16_rows:?}");
    assert_eq!(bf16_rows.iter().any(|r| r.ends_with("_muon_f32")), tiny_diffusion::fused::amx::available(), "{bf16_rows:?}");
}

#[test]
fn bench_measures_the_peaks_and_gives_each_row_its_share_of_the_one_it_multiplied_on() {
    let table = |extra: &[&str]| {
        let mut args = vec!["bench", "--preset", "tiny", "--batch", "2", "--cases", "train", "--runs", "1"];
        args.extend(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let amx = tiny_diffusion::fused::amx::available();
    // The peaks: measured unless given, figures a CPU can have; the tiles' only where there are some.
    let measured = table(&["--matmul", "f32"]);
    let peak: f64 = measured.split("f32 peak ").nth(1).and_then(|r| r.split(' ').next()).and_then(|g| g.parse().ok()).unwrap_or_else(|| panic!("no peak in {measured}"));
    assert!(measured.contains("GFLOP/s (measured)") && (1.0..100_000.0).contains(&peak), "{measured}");
    assert_eq!(measured.contains("AMX bf16 peak"), amx, "{measured}");
    // With --json, after the cases, as compare.py reads them.
    let json = table(&["--matmul", "f32", "--json"]);
    let peak_row = |case: &str| json.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).find(|r| r["case"] == case);
    assert!(peak_row("process/f32_peak").is_some_and(|r| r["gflops"].as_f64().is_some_and(|g| g > 1.0) && r["measured"] == true), "{json}");
    assert_eq!(peak_row("process/tile_peak").is_some_and(|r| r["gflops"].as_f64().is_some_and(|g| g > 1.0)), amx, "{json}");
    // The shares, with an f32 peak of 1 GFLOP/s that every row multiplied in f32 passes many times
    // over and no row on the tiles can pass: those are held to the tiles' measured peak.
    let share = |row: &str| -> f64 {
        let cell = row.trim_end_matches(['|', ' ']).rsplit('|').next().unwrap_or("").trim();
        cell.strip_suffix('%').and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no share in {row}"))
    };
    for matmul in ["f32", "bf16"] {
        let out = table(&["--matmul", matmul, "--peak-gflops", "1"]);
        assert!(out.contains("f32 peak 1 GFLOP/s"), "{out}");
        for row in out.lines().filter(|l| l.contains("training step")) {
            let on_tiles = amx && matmul == "bf16" && !row.contains("f32 matmuls");
            assert_eq!(share(row) <= 100.0, on_tiles, "{row}");
        }
    }
}

#[test]
fn inference_in_bf16_runs_on_the_tiles_where_there_are_some_and_f32_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let trace = |matmul: Option<&str>| {
        let path = dir.path().join(format!("{matmul:?}.jsonl"));
        let mut args = vec!["generate", "--length", "40", "--seed", "3", "--trace", path.to_str().unwrap()];
        args.extend(matmul.map(|m| ["--matmul", m]).into_iter().flatten());
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        // Every step as traced, but for its time.
        let steps = std::fs::read_to_string(&path).unwrap();
        steps.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).map(|mut step| {
            step.as_object_mut().unwrap().remove("elapsed");
            step
        }).collect::<Vec<_>>()
    };
    let (default, f32s, bf16s) = (trace(None), trace(Some("f32")), trace(Some("bf16")));
    assert_eq!(default, f32s, "f32 is the default");
    // Each step's confidences come from the logits: bf16 products change them, on AMX tiles only
    // (elsewhere bf16 falls back to f32).
    assert_eq!(bf16s != f32s, tiny_diffusion::fused::amx::available());
}
