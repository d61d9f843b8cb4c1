//! The real binary in tmux, driven by keys and read back with `capture-pane`, as a user would.

use burn::prelude::Device;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use tiny_diffusion::data::{DataSource, TINY_SHAKESPEARE};
use tiny_diffusion::model::Preset;
use tiny_diffusion::train::{TrainSettings, train};

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(command: &str, width: u16, height: u16) -> Tmux {
        // One session per test: tests run in parallel in one process.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let session = format!("td-e2e-{}-{n}", std::process::id());
        let status = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", &width.to_string(), "-y", &height.to_string(), command])
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        Tmux { session }
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux").args(["send-keys", "-t", &self.session]).args(keys).status().unwrap();
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux").args(["capture-pane", "-p", "-t", &self.session]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits for the program to end (its command echoes `EXITED $?`), asserts it exited 0, and
    /// returns the screen it left.
    fn wait_for_clean_exit(&self) -> String {
        let exited = self.wait_for("exit", Duration::from_secs(10), |s| s.contains("EXITED"));
        assert!(exited.contains("EXITED 0"), "{exited}");
        exited
    }

    /// Waits until the screen satisfies `pred`, or fails with the last screen.
    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(start.elapsed() < timeout, "timed out waiting for {what}; screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Whether tmux can run here; says so when it cannot (the tests then skip).
fn tmux_installed() -> bool {
    let installed = Command::new("tmux").arg("-V").output().is_ok();
    if !installed {
        eprintln!("SKIPPED: tmux is not installed (.ci/run installs it)");
    }
    installed
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.session]).status();
    }
}

/// Masked cells in the grid (the lines between the header and the status line).
fn masked_cells(screen: &str) -> usize {
    screen.lines().skip(1).take_while(|l| !l.starts_with('▶') && !l.starts_with('⏸')).map(|l| l.matches('░').count()).sum()
}

/// The step number in the status line.
fn step(screen: &str) -> usize {
    const LABEL: &str = " · step ";
    let line = screen.lines().find(|l| l.contains(LABEL)).expect("status line");
    let rest = &line[line.find(LABEL).unwrap() + LABEL.len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

fn tiny_checkpoint(dir: &Path) {
    let data = dir.join("text.txt");
    std::fs::write(&data, &TINY_SHAKESPEARE[..20_000]).unwrap();
    let data = DataSource::File(data);
    let settings = TrainSettings { steps: 30, batch: 8, seq_len: 32, eval_every: 0, sample_every: 0, save_every: 0, ..TrainSettings::for_preset(Preset::Tiny) };
    train(&settings, &data, &dir.join("ck"), &Device::flex(), false, &AtomicBool::new(false), &mut |_| {}).unwrap();
}

#[test]
fn tui_animates_pauses_steps_and_quits_in_tmux() {
    if !tmux_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    tiny_checkpoint(dir.path());
    let bin = env!("CARGO_BIN_EXE_tiny-diffusion");
    let cast = dir.path().join("session.cast");
    let command = format!("{bin} tui --checkpoint {} --record {}; echo EXITED $?; sleep 30", dir.path().join("ck").display(), cast.display());
    let tmux = Tmux::start(&command, 100, 30);

    // Masked cells appear, then resolve until the block is done.
    let first = tmux.wait_for("masked cells", Duration::from_secs(20), |s| masked_cells(s) > 0);
    assert!(first.contains("Watch") && first.contains("confidence"), "{first}");
    let done = tmux.wait_for("the block to finish", Duration::from_secs(60), |s| s.contains("done · c continues"));
    assert_eq!(masked_cells(&done), 0, "{done}");

    // Regenerate, slow down, pause: the screen holds still.
    tmux.keys(&["r", "[", "[", "[", "[", " "]);
    let paused = tmux.wait_for("pause", Duration::from_secs(5), |s| s.contains('⏸'));
    std::thread::sleep(Duration::from_millis(600));
    let still = tmux.screen();
    assert_eq!(step(&paused), step(&still), "paused playback moved:\n{still}");
    assert!(masked_cells(&still) > 0, "a fresh block starts masked:\n{still}");

    // One step forward, then one back.
    let before = step(&still);
    let wait_step = |n: usize| tmux.wait_for(&format!("step {n}"), Duration::from_secs(10), |s| step(s) == n);
    tmux.keys(&["Right"]);
    let forward = wait_step(before + 1);
    assert!(masked_cells(&forward) < masked_cells(&still), "a step forward resolves cells");
    tmux.keys(&["Left"]);
    wait_step(before);

    // A 20,000-character paste typed as keys (no bracketed paste) arrives whole, quickly.
    tmux.keys(&["Tab", "C-u"]);
    tmux.wait_for("the empty editor", Duration::from_secs(5), |s| s.contains("0 characters, 0 to fill"));
    let paste: String = "to be or not the question whether nobler ".chars().cycle().take(20_000).collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &paste).unwrap();
    let buffer = format!("td-paste-{}", std::process::id());
    let tmux_ok = |args: &[&str]| assert!(Command::new("tmux").args(args).status().unwrap().success());
    tmux_ok(&["load-buffer", "-b", &buffer, file.path().to_str().unwrap()]);
    tmux_ok(&["paste-buffer", "-d", "-b", &buffer, "-t", &tmux.session]);
    tmux.wait_for("all 20,000 characters", Duration::from_secs(10), |s| s.contains("20000 characters, 0 to fill"));
    tmux.keys(&["Escape"]);
    tmux.wait_for("the watch screen", Duration::from_secs(5), |s| s.contains("masked ·"));

    // Help opens and closes; q quits and the shell prompt comes back.
    tmux.keys(&["?"]);
    tmux.wait_for("help", Duration::from_secs(5), |s| s.contains("Help — Watch"));
    tmux.keys(&["Escape"]);
    tmux.wait_for("help to close", Duration::from_secs(5), |s| !s.contains("Help — Watch"));
    tmux.keys(&["q"]);
    let exited = tmux.wait_for_clean_exit();

    // The session was recorded as drawn: a valid asciicast, time never running backwards.
    let recording = std::fs::read_to_string(&cast).expect("the recording was saved");
    let mut lines = recording.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!((header["version"].as_u64(), header["width"].as_u64(), header["height"].as_u64()), (Some(2), Some(100), Some(30)));
    let events: Vec<serde_json::Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.len() > 20, "{} screens", events.len());
    let times: Vec<f64> = events.iter().map(|e| e[0].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert!(events.iter().any(|e| e[2].as_str().is_some_and(|t| t.contains("Help — Watch"))), "the help overlay was recorded");
    assert!(!exited.contains("Watch"), "the alternate screen was left:\n{exited}");
}

#[test]
fn compare_races_the_shipped_models_to_their_scoreboards_in_tmux() {
    if !tmux_installed() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_tiny-diffusion");
    let tmux = Tmux::start(&format!("{bin} compare --length 96; echo EXITED $?; sleep 30"), 100, 30);
    let start = tmux.wait_for("two lanes", Duration::from_secs(20), |s| s.contains("masked diffusion ·") && s.contains("autoregressive ·"));
    assert!(start.contains("per forward pass"), "{start}");
    tmux.keys(&["]", "]", "]"]);
    let done = tmux.wait_for("both scoreboards", Duration::from_secs(60), |s| s.matches("done · ").count() == 2);
    assert!(done.contains("96 passes"), "the autoregressive lane writes one character per pass:\n{done}");
    assert!(done.contains("judge "), "{done}");
    tmux.keys(&["c"]);
    tmux.wait_for("the real-time clock", Duration::from_secs(5), |s| s.contains("real time"));
    tmux.keys(&["q"]);
    tmux.wait_for_clean_exit();
}

#[test]
fn life_masks_live_cells_and_rewrites_them_generation_after_generation_in_tmux() {
    if !tmux_installed() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_tiny-diffusion");
    let tmux = Tmux::start(&format!("{bin} life --width 24 --height 10; echo EXITED $?; sleep 30"), 100, 30);
    tmux.wait_for("the seeded grid", Duration::from_secs(30), |s| s.contains("generation 0") && s.contains("24×10"));
    tmux.keys(&["]", "]", "]"]);
    tmux.wait_for("two generations", Duration::from_secs(60), |s| s.contains("generation 2"));
    tmux.keys(&[" "]);
    tmux.wait_for("pause", Duration::from_secs(5), |s| s.contains('⏸'));
    tmux.keys(&["?"]);
    tmux.wait_for("help", Duration::from_secs(5), |s| s.contains("Help — Life") && s.contains("next generation"));
    tmux.keys(&["Escape", "q"]);
    tmux.wait_for_clean_exit();
}

#[test]
fn an_elastic_gap_grows_and_shrinks_on_screen_before_it_settles_in_tmux() {
    if !tmux_installed() {
        return;
    }
    // The shipped model knows the length states: Enter on an elastic gap animates it.
    let bin = env!("CARGO_BIN_EXE_tiny-diffusion");
    let tmux = Tmux::start(&format!("{bin}; echo EXITED $?; sleep 30"), 100, 30);
    tmux.wait_for("the Watch screen", Duration::from_secs(20), |s| s.contains("step"));
    tmux.keys(&["i"]);
    tmux.wait_for("the Infill screen", Duration::from_secs(5), |s| s.contains("Prompt"));
    tmux.keys(&["C-u"]);
    tmux.keys(&["-l", "But soft, what light through yonder _*2 breaks? It is the east."]);
    tmux.keys(&["Enter"]);
    let grown = tmux.wait_for("the gap grown", Duration::from_secs(20), |s| s.contains("grown by the model to"));
    let length: usize = grown.split("grown by the model to ").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok()).expect("a length");
    // Back through the frames: the gap split on the way (it started as two masks).
    tmux.keys(&["space"]);
    let mut seen = Vec::new();
    for _ in 0..40 {
        tmux.keys(&["Left"]);
        std::thread::sleep(Duration::from_millis(60));
        let screen = tmux.screen();
        seen.push(screen.lines().find(|l| l.contains(" · step ")).unwrap_or_default().to_string());
        if step(&screen) == 1 {
            break;
        }
    }
    assert!(seen.iter().any(|l| l.contains(" split")), "no frame split the gap: {seen:#?}");
    tmux.keys(&["space"]);
    let settled = tmux.wait_for("the fill", Duration::from_secs(5), |s| s.contains(" breaks? It is the east.") && masked_cells(s) == 0);
    let line = settled.lines().find(|l| l.contains("breaks?")).unwrap();
    let fill = line.split("yonder ").nth(1).and_then(|r| r.split(" breaks?").next()).expect("the fill in place");
    assert_eq!(fill.chars().count(), length, "{settled}");
    tmux.keys(&["q"]);
    tmux.wait_for_clean_exit();
}
