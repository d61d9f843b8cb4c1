//! Worker threads: the model and the trainer never run on the UI thread.
//!
//! The generation worker takes `GenJob`s and streams back one `Frame` per denoising step; a
//! newer job preempts the current one between steps. The UI records the frames and plays them
//! back at its own pace, so keys are answered at once even while a step is computing.

use crate::data::DataSource;
use crate::diffusion::{Cell, DecodeOptions, Denoiser, Frame};
use crate::train::{TrainEvent, TrainSettings, train};
use burn::prelude::Device;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::thread;

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
    thread::Builder::new()
        .name("generator".into())
        .spawn(move || {
            let mut pending: Option<GenJob> = None;
            // Loaded on the first elastic gap.
            let mut judge: Option<crate::judge::Judge> = None;
            loop {
                let job = match pending.take() {
                    Some(job) => job,
                    None => match commands.recv() {
                        Ok(GenCommand::Run(job)) => *job,
                        Ok(GenCommand::Model(m)) => {
                            model = m;
                            continue;
                        }
                        Err(_) => return,
                    },
                };
                let mut job = job;
                if let Some(elastic) = job.elastic.take() {
                    let message = if model.length_states() {
                        grow_elastic(model.as_ref(), &elastic, &mut job, &send)
                    } else {
                        let rankings = resolve_elastic(model.as_ref(), &mut judge, &device, &elastic, job.options);
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
                let mut generation = crate::kind::generation(model.as_ref(), &job.prompt, job.length, job.overlap, job.options);
                if let Some(cells) = job.resume.take() {
                    generation = generation.resumed_from(cells);
                }
                'steps: loop {
                    match commands.try_recv() {
                        Ok(GenCommand::Run(next)) => {
                            pending = Some(*next);
                            break 'steps;
                        }
                        Ok(GenCommand::Model(m)) => model = m,
                        Err(TryRecvError::Empty) => {}
                        Err(TryRecvError::Disconnected) => return,
                    }
                    // Every frame carries the model's belief about every masked position, for the
                    // inspector and the uncertainty view (a full pass more per step).
                    let looked = |mut frame: Frame| {
                        crate::diffusion::look(&mut frame, model.as_ref(), &job.options);
                        GenMsg::Frame { job: job.id, frame }
                    };
                    if let Some(initial) = generation.begin_block()
                        && !send(looked(initial))
                    {
                        return;
                    }
                    match generation.step(model.as_ref()) {
                        Some(frame) => {
                            if !send(looked(frame)) {
                                return;
                            }
                        }
                        None => {
                            let done = GenMsg::Done { job: job.id, cells: generation.cells().to_vec() };
                            if !send(done) {
                                return;
                            }
                            break 'steps;
                        }
                    }
                }
            }
        })
        .expect("spawn generator thread");
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

/// Chooses the lengths of a prompt's elastic gaps with the judge (loaded once).
fn resolve_elastic(
    model: &(dyn Denoiser + Sync),
    judge: &mut Option<crate::judge::Judge>,
    device: &Device,
    elastic: &crate::elastic::ElasticPrompt,
    options: DecodeOptions,
) -> Result<(Vec<u32>, Vec<Vec<crate::elastic::Candidate>>), String> {
    if judge.is_none() {
        *judge = Some(crate::judge::Judge::load(None, device).map_err(|e| format!("{e:#}"))?);
    }
    let judge = judge.as_ref().expect("loaded above");
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
    thread::Builder::new()
        .name("trainer".into())
        .spawn(move || {
            let result = train(&settings, &data, &out_dir, &device, false, &stop, &mut |e| send(TrainMsg::Event(e)));
            send(TrainMsg::Finished(result.map(|_| out_dir).map_err(|e| format!("{e:#}"))));
        })
        .expect("spawn trainer thread");
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
    thread::Builder::new()
        .name("racer".into())
        .spawn(move || {
            let mut source = Some(source);
            let mut setup: Option<crate::race::RaceSetup> = None;
            let mut next = commands.recv().ok();
            while let Some((race, options)) = next.take() {
                if setup.is_none() {
                    match source.take().expect("loaded once").load(&device) {
                        Ok(s) => setup = Some(s),
                        Err(e) => {
                            send(RaceMsg::Failed { race, error: format!("{e:#}") });
                            return;
                        }
                    }
                }
                let s = setup.as_ref().expect("loaded above");
                let lanes = s.entrants.iter().map(|e| (e.title.clone(), e.config.vocab.clone())).collect();
                if !send(RaceMsg::Lanes { race, lanes }) {
                    return;
                }
                'lanes: for (lane, (e, prompt)) in s.entrants.iter().zip(&s.prompts).enumerate() {
                    let mut last = None;
                    let mut alive = true;
                    crate::race::run_lane(&e.denoiser, prompt, s.length, options, |frame| {
                        if let Ok(newer) = commands.try_recv() {
                            next = Some(newer);
                            return false;
                        }
                        last = Some(frame.clone());
                        alive = send(RaceMsg::Frame { race, lane, frame });
                        alive
                    });
                    if !alive {
                        return;
                    }
                    if next.is_some() {
                        break 'lanes;
                    }
                    let score = crate::race::score(&last.expect("a lane reports its start"), &e.config.vocab, &s.judge);
                    if !send(RaceMsg::Score { race, lane, score: score.map_err(|e| format!("{e:#}")) }) {
                        return;
                    }
                }
                if next.is_none() {
                    next = commands.recv().ok();
                }
            }
        })
        .expect("spawn racer thread");
}
