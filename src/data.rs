//! The training corpus (built-in Tiny Shakespeare, or any text file), split into train (first 90%)
//! and validation (last 10%).

use crate::vocab::Vocab;
use anyhow::{Context, Result, ensure};
use rand::{Rng, RngExt};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

/// Tiny Shakespeare (public domain; the character-level corpus of Karpathy's char-rnn), compiled
/// into the binary so training and evaluation work with nothing beside it.
pub const TINY_SHAKESPEARE: &str = include_str!("../assets/tinyshakespeare.txt");
/// How the built-in corpus is shown to users and recorded in checkpoints.
pub const BUILT_IN_NAME: &str = "Tiny Shakespeare (built in)";

/// Where training text comes from: the built-in corpus, or a file the user names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DataSource {
    #[default]
    BuiltIn,
    File(PathBuf),
}

impl DataSource {
    /// `--data FILE`, or the built-in corpus without it.
    pub fn from_arg(path: Option<&Path>) -> Self {
        path.map_or(DataSource::BuiltIn, |p| DataSource::File(p.to_path_buf()))
    }

    /// The source a checkpoint recorded (`TrainingMeta::data_file`), for resuming without `--data`.
    pub fn from_recorded(recorded: Option<&str>) -> Self {
        match recorded {
            None | Some(BUILT_IN_NAME) => DataSource::BuiltIn,
            Some(path) => DataSource::File(PathBuf::from(path)),
        }
    }

    /// Reads the text. With `vocab`, the text must fit that vocabulary (resuming); otherwise the
    /// vocabulary is built from the text.
    pub fn load(&self, vocab: Option<Vocab>) -> Result<Corpus> {
        match self {
            DataSource::BuiltIn => Corpus::from_text(TINY_SHAKESPEARE, vocab).context(BUILT_IN_NAME),
            DataSource::File(path) => Corpus::load(path, vocab),
        }
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSource::BuiltIn => f.write_str(BUILT_IN_NAME),
            DataSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

pub struct Corpus {
    pub vocab: Vocab,
    pub train: Vec<u32>,
    pub val: Vec<u32>,
    pub sha256: String,
}

impl Corpus {
    /// Reads a UTF-8 text file. With `vocab`, the text must fit that vocabulary (resuming);
    /// otherwise the vocabulary is built from the text.
    pub fn load(path: &Path, vocab: Option<Vocab>) -> Result<Self> {
        if !path.exists() {
            anyhow::bail!(
                "training data {} not found. Give the path of a UTF-8 text file, \
                 or leave out --data to train on {BUILT_IN_NAME}.",
                path.display()
            );
        }
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let text = String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))?;
        Self::from_text(&text, vocab).with_context(|| format!("in {}", path.display()))
    }

    /// Windows line endings (CRLF) read as LF, so a text trains the same on every platform: the
    /// same vocabulary, ids and sha256 as its LF twin.
    pub fn from_text(text: &str, vocab: Option<Vocab>) -> Result<Self> {
        let text = if text.contains("\r\n") { std::borrow::Cow::Owned(text.replace("\r\n", "\n")) } else { std::borrow::Cow::Borrowed(text) };
        let text = text.as_ref();
        let vocab = match vocab {
            Some(v) => v,
            None => Vocab::from_text(text)?,
        };
        let ids = vocab.encode(text).context("the text has characters the checkpoint's vocabulary lacks")?;
        ensure!(ids.len() >= 20, "the training text is too short ({} characters)", ids.len());
        let split = ids.len() - ids.len() / 10;
        let sha256 = format!("{:x}", Sha256::digest(text.as_bytes()));
        Ok(Corpus { vocab, train: ids[..split].to_vec(), val: ids[split..].to_vec(), sha256 })
    }

    /// The longest window both splits can supply.
    pub fn max_seq_len(&self) -> usize {
        self.train.len().min(self.val.len())
    }
}

/// `batch` random windows of `seq_len` ids.
pub fn random_windows(data: &[u32], batch: usize, seq_len: usize, rng: &mut impl Rng) -> Vec<Vec<u32>> {
    let last_start = data.len() - seq_len;
    (0..batch)
        .map(|_| {
            let s = rng.random_range(0..=last_start);
            data[s..s + seq_len].to_vec()
        })
        .collect()
}

/// `count` windows spread evenly over `data`: a fixed validation set.
pub fn even_windows(data: &[u32], count: usize, seq_len: usize) -> Vec<Vec<u32>> {
    let last_start = data.len() - seq_len;
    (0..count)
        .map(|i| {
            let s = if count > 1 { i * last_start / (count - 1) } else { 0 };
            data[s..s + seq_len].to_vec()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_ninety_ten_and_hash_is_stable() {
        let text = "abcdefghij".repeat(10);
        let c = Corpus::from_text(&text, None).unwrap();
        assert_eq!(c.train.len(), 90);
        assert_eq!(c.val.len(), 10);
        assert_eq!(c.sha256.len(), 64);
        assert_eq!(c.sha256, Corpus::from_text(&text, None).unwrap().sha256);
    }

    #[test]
    fn a_text_with_windows_line_endings_is_its_lf_twin() {
        let lf = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n";
        let (a, b) = (Corpus::from_text(lf, None).unwrap(), Corpus::from_text(&lf.replace('\n', "\r\n"), None).unwrap());
        assert_eq!((a.vocab, a.train, a.val, a.sha256), (b.vocab, b.train, b.val, b.sha256));
    }

    #[test]
    fn missing_file_says_what_to_do_instead() {
        let err = Corpus::load(Path::new("/nonexistent/tiny.txt"), None).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/tiny.txt") && err.contains("--data") && err.contains(BUILT_IN_NAME), "{err}");
    }

    #[test]
    fn the_built_in_corpus_is_tiny_shakespeare_whole() {
        let c = DataSource::BuiltIn.load(None).unwrap();
        assert_eq!(c.sha256, "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed");
        assert_eq!(c.vocab.size(), 66);
        assert_eq!(c.train.len() + c.val.len(), 1_115_394);
    }

    #[test]
    fn a_recorded_source_reads_back_as_the_same_source() {
        for source in [DataSource::BuiltIn, DataSource::File(PathBuf::from("my text.txt"))] {
            assert_eq!(DataSource::from_recorded(Some(&source.to_string())), source);
        }
        assert_eq!(DataSource::from_recorded(None), DataSource::BuiltIn);
    }

    #[test]
    fn foreign_text_with_checkpoint_vocab_is_an_error() {
        let v = Vocab::from_text("abc").unwrap();
        assert!(Corpus::from_text(&"abcz".repeat(10), Some(v)).is_err());
    }

    #[test]
    fn even_windows_cover_both_ends() {
        let data: Vec<u32> = (0..100).collect();
        let w = even_windows(&data, 3, 10);
        assert_eq!(w[0][0], 0);
        assert_eq!(w[2][9], 99);
    }
}

/// A training or validation batch: `batch` rows of `seq` positions, flattened row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub batch: usize,
    pub seq: usize,
    pub positions: Vec<Position>,
    pub rows: Vec<Row>,
}

/// One position of a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    /// What the model reads (MASK where a masked-diffusion batch hides a character).
    pub input: u32,
    /// The character to predict.
    pub target: u32,
    /// 1.0 where the loss is taken, 0.0 elsewhere.
    pub weight: f32,
}

/// One row (sequence) of a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// The row's noise rate, which a timestep-conditioned model is told.
    pub rate: f32,
    /// Turns the row's summed loss into nats per character of the text: 1/(t·seq) for masked
    /// diffusion (the ELBO), 1/seq for a model that predicts every character once.
    pub per_char: f32,
}

impl Position {
    /// A position whose loss is taken: it reads `input` and predicts `target`.
    pub fn asked(input: u32, target: u32) -> Self {
        Position { input, target, weight: 1.0 }
    }

    /// A position the model reads but is not asked about.
    pub fn read(token: u32) -> Self {
        Position { input: token, target: token, weight: 0.0 }
    }
}
