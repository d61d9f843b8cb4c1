//! Worker threads: the model and the trainer never run on the UI thread.
//!
//! Every worker has the same shape (`spawn`): a named thread that takes commands from its
//! `Inbox`, loads what it needs on the first one (`load_once`), streams messages to a `send` that
//! says whether the UI still listens, and ends when it no longer does. Between two steps of a job
//! it asks its inbox whether a newer command preempts it.
//!
//! The generation worker takes `GenJob`s and streams back one `Frame` per denoising step. The UI
//! records the frames and plays them back at its own pace, so keys are answered at once even
//! while a step is computing.

use crate::data::DataSource;
use crate::diffusion::{Cell, DecodeOptions, Denoiser, Frame};
use crate::train::{TrainEvent, TrainSettings, train};
use burn::prelude::Device;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::thread;

/// Runs `body` on a thread called `name`.
pub fn spawn(name: &str, body: impl FnOnce() + Send + 'static) {
    thread::Builder::new().name(name.into()).spawn(body).unwrap_or_else(|e| panic!("cannot start the {name} thread: {e}"));
}

/// A worker's commands: it waits for the next one when idle, and between the steps of a job
/// looks whether a newer one has come to preempt it.
pub struct Inbox<C> {
    commands: Receiver<C>,
    /// A command that preempted the job in hand: the next one served.
    pending: Option<C>,
    closed: bool,
}

impl<C> Iterator for Inbox<C> {
    type Item = C;

    /// The next command (one that preempted the last job first), waiting for it; None once the
    /// UI has gone.
    fn next(&mut self) -> Option<C> {
        match self.pending.take() {
            Some(command) => Some(command),
            None if self.closed => None,
            None => self.commands.recv().ok(),
        }
    }
}

impl<C> Inbox<C> {
    pub fn new(commands: Receiver<C>) -> Self {
        Inbox { commands, pending: None, closed: false }
    }


    /// Between two steps: whether the job in hand should stop, because a newer command has come
    /// (kept for `next`) or the UI has gone.
    pub fn preempted(&mut self) -> bool {
        if self.pending.is_some() || self.closed {
            return true;
        }
        match self.commands.try_recv() {
            Ok(command) => self.pending = Some(command),
            Err(TryRecvError::Empty) => return false,
            Err(TryRecvError::Disconnected) => self.closed = true,
        }
        true
    }
}

/// What a worker loads on its first command (models, a judge), loaded then and kept; the error
/// as the UI shows it.
pub fn load_once<T>(slot: &mut Option<T>, load: impl FnOnce() -> anyhow::Result<T>) -> Result<&T, String> {
    if slot.is_none() {
        *slot = Some(load().map_err(|e| format!("{e:#}"))?);
    }
    Ok(slot.as_ref().expect("loaded above"))
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenJob {
    pub id: u64,
    /// Whole text so far with MASK at gaps; positions past it are generated up to `length`.
    pub prompt: Vec<u32>,
    pub length: usize,
    pub overlap: usize,
    pub options: DecodeOptions,
    /// A prompt with elastic gaps: the worker chooses their lengths first (`elastic::resolve`,
    /// or `elastic::grow` with a model that knows the length states), reports them
    /// (`GenMsg::Resolved` or `Grown`) and generates from `prompt` with those lengths.
    pub elastic: Option<crate::elastic::ElasticPrompt>,
    /// A run carried on from these cells (a paused run with a cell pinned or unpinned), rather
    /// than from `prompt` alone.
    pub resume: Option<Vec<Cell>>,
}

#[derive(Debug, Clone)]
pub enum GenMsg {
    /// The elastic gaps' lengths were chosen: the prompt with them, and each gap's ranking.
    Resolved { job: u64, prompt: Vec<u32>, rankings: Result<Vec<Vec<crate::elastic::Candidate>>, String> },
    /// A model with length states grew and shrank the elastic gaps (its frames came before
    /// this): the prompt with them filled, and their lengths.
    Grown { job: u64, prompt: Vec<u32>, lengths: Vec<usize> },
    /// First frame of a block (nothing decoded yet), then one per step.
    Frame { job: u64, frame: Frame },
    /// The job finished: the whole buffer and the confidence of each position.
    Done { job: u64, cells: Vec<Cell> },
}

/// Commands to the generation worker.
pub enum GenCommand {
    Run(Box<GenJob>),
    /// Swap in another model (e.g. one just trained).
    Model(Box<dyn Denoiser + Send + Sync>),
}

/// Spawns the generation worker. It hands each message to `send`, which says whether anyone still
/// listens, and ends when no one does or the command channel closes.
pub fn spawn_generator(mut model: Box<dyn Denoiser + Send + Sync>, device: Device, commands: Receiver<GenCommand>, send: impl Fn(GenMsg) -> bool + Send + 'static) {
    spawn("generator", move || {
        let mut inbox = Inbox::new(commands);
        // Loaded on the first elastic gap that needs it.
        let mut judge: Option<crate::judge::Judge> = None;
        while let Some(command) = inbox.next() {
            let mut job = match command {
                GenCommand::Run(job) => *job,
                GenCommand::Model(m) => {
                    model = m;
                    continue;
                }
            };
            if let Some(elastic) = job.elastic.take() {
                let message = if model.length_states() {
                    grow_elastic(model.as_ref(), &elastic, &mut job, &send)
                } else {
                    let judge = load_once(&mut judge, || crate::judge::Judge::load(None, &device));
                    let rankings = judge.and_then(|judge| resolve_elastic(model.as_ref(), judge, &elastic, job.options));
                    if let Ok((prompt, _)) = &rankings {
                        (job.prompt, job.length) = (prompt.clone(), prompt.len());
                    }
                    GenMsg::Resolved { job: job.id, prompt: job.prompt.clone(), rankings: rankings.map(|(_, r)| r) }
                };
                let failed = matches!(&message, GenMsg::Resolved { rankings: Err(_), .. });
                if !send(message) {
                    return;
                }
                if failed {
                    continue;
                }
            }
            if !generate(model.as_ref(), job, &mut inbox, &send) {
                return;
            }
        }
    });
}

/// Runs one job, a frame a step, until it is done or preempted; false once the UI has gone.
fn generate(model: &(dyn Denoiser + Sync), mut job: GenJob, inbox: &mut Inbox<GenCommand>, send: &impl Fn(GenMsg) -> bool) -> bool {
    let mut generation = crate::kind::generation(model, &job.prompt, job.length, job.overlap, job.options);
    if let Some(cells) = job.resume.take() {
        generation = generation.resumed_from(cells);
    }
    // Every frame carries the model's belief about every masked position, for the inspector and
    // the uncertainty view (a full pass more per step).
    let looked = |mut frame: Frame| {
        crate::diffusion::look(&mut frame, model, &job.options);
        GenMsg::Frame { job: job.id, frame }
    };
    while !inbox.preempted() {
        if let Some(initial) = generation.begin_block()
            && !send(looked(initial))
        {
            return false;
        }
        let Some(frame) = generation.step(model) else {
            return send(GenMsg::Done { job: job.id, cells: generation.cells().to_vec() });
        };
        if !send(looked(frame)) {
            return false;
        }
    }
    true
}

/// Lets a model with length states grow and shrink a prompt's elastic gaps, sending a frame a
/// step, and sets the job to fill what is left of the prompt. Returns the message that says so
/// (`Grown`, or `Resolved` with the error).
fn grow_elastic(model: &dyn Denoiser, elastic: &crate::elastic::ElasticPrompt, job: &mut GenJob, send: &impl Fn(GenMsg) -> bool) -> GenMsg {
    let id = job.id;
    let grown = crate::elastic::grow(model, elastic, crate::elastic::DEFAULT_MAX_GAP, job.options.seed, &mut |frame| {
        send(GenMsg::Frame { job: id, frame });
    });
    match grown {
        Ok((prompt, lengths)) => {
            (job.prompt, job.length) = (prompt.clone(), prompt.len());
            GenMsg::Grown { job: id, prompt, lengths }
        }
        Err(e) => GenMsg::Resolved { job: id, prompt: job.prompt.clone(), rankings: Err(format!("{e:#}")) },
    }
}

/// Chooses the lengths of a prompt's elastic gaps with the judge.
fn resolve_elastic(
    model: &(dyn Denoiser + Sync),
    judge: &crate::judge::Judge,
    elastic: &crate::elastic::ElasticPrompt,
    options: DecodeOptions,
) -> Result<(Vec<u32>, Vec<Vec<crate::elastic::Candidate>>), String> {
    crate::elastic::resolve(model, judge, elastic, crate::elastic::DEFAULT_MAX_GAP, options.seed).map_err(|e| format!("{e:#}"))
}

/// Runs a training job on its own thread; events (and the final result) arrive on `out`.
pub enum TrainMsg {
    Event(TrainEvent),
    Finished(Result<PathBuf, String>),
}

pub fn spawn_trainer(
    settings: TrainSettings,
    data: DataSource,
    out_dir: PathBuf,
    device: Device,
    stop: Arc<AtomicBool>,
    send: impl Fn(TrainMsg) + Send + 'static,
) {
    spawn("trainer", move || {
        let result = train(&settings, &data, &out_dir, &device, false, &stop, &mut |e| send(TrainMsg::Event(e)));
        send(TrainMsg::Finished(result.map(|_| out_dir).map_err(|e| format!("{e:#}"))));
    });
}

#[derive(Debug, Clone)]
pub enum RaceMsg {
    /// The lanes of race `race`: titles and vocabularies.
    Lanes { race: u64, lanes: Vec<(String, crate::vocab::Vocab)> },
    Frame { race: u64, lane: usize, frame: crate::race::LaneFrame },
    Score { race: u64, lane: usize, score: Result<crate::race::Score, String> },
    Failed { race: u64, error: String },
}

/// Runs races on their own thread, lane after lane; a newer race preempts the current one.
pub fn spawn_racer(source: crate::race::RaceSource, device: Device, commands: Receiver<(u64, DecodeOptions)>, send: impl Fn(RaceMsg) -> bool + Send + 'static) {
    spawn("racer", move || {
        let mut inbox = Inbox::new(commands);
        let mut source = Some(source);
        let mut setup: Option<crate::race::RaceSetup> = None;
        while let Some((race, options)) = inbox.next() {
            let s = match load_once(&mut setup, || source.take().expect("loaded once").load(&device)) {
                Ok(s) => s,
                Err(error) => {
                    send(RaceMsg::Failed { race, error });
                    return;
                }
            };
            let lanes = s.entrants.iter().map(|e| (e.title.clone(), e.config.vocab.clone())).collect();
            if !send(RaceMsg::Lanes { race, lanes }) {
                return;
            }
            for (lane, e) in s.entrants.iter().enumerate() {
                let (mut last, mut alive) = (None, true);
                crate::race::run_lane(&e.denoiser, &e.prompt, s.length, options, |frame| {
                    if inbox.preempted() {
                        return false;
                    }
                    last = Some(frame.clone());
                    alive = send(RaceMsg::Frame { race, lane, frame });
                    alive
                });
                if !alive {
                    return;
                }
                if inbox.preempted() {
                    break;
                }
                let score = crate::race::score(&last.expect("a lane reports its start"), &e.config.vocab, &s.judge);
                if !send(RaceMsg::Score { race, lane, score: score.map_err(|e| format!("{e:#}")) }) {
                    return;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_command_preempts_the_job_in_hand_and_is_served_next() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut inbox = Inbox::new(rx);
        tx.send(1).unwrap();
        assert_eq!(inbox.next(), Some(1));
        assert!(!inbox.preempted(), "nothing newer: the job goes on");
        tx.send(2).unwrap();
        assert!(inbox.preempted() && inbox.preempted(), "a newer command stops the job, and keeps stopping it");
        assert_eq!(inbox.next(), Some(2));
        drop(tx);
        assert!(inbox.preempted(), "the UI has gone: the job stops");
        assert_eq!(inbox.next(), None);
    }

    #[test]
    fn a_worker_loads_once_and_reports_a_failed_load() {
        let mut slot = None;
        let mut loads = 0;
        for _ in 0..3 {
            assert_eq!(load_once(&mut slot, || {
                loads += 1;
                Ok(7)
            }), Ok(&7));
        }
        assert_eq!(loads, 1);
        let mut empty: Option<u32> = None;
        assert_eq!(load_once(&mut empty, || anyhow::bail!("no model here")), Err("no model here".to_string()));
    }
}
