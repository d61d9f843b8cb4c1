//! Worker threads: the model and the trainer never run on the UI thread.
//!
//! The generation worker takes `GenJob`s and streams back one `Frame` per denoising step; a
//! newer job preempts the current one between steps. The UI records the frames and plays them
//! back at its own pace, so keys are answered at once even while a step is computing.

use crate::data::DataSource;
use crate::diffusion::{DecodeOptions, Denoiser, Frame, Generation};
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
}

#[derive(Debug, Clone)]
pub enum GenMsg {
    /// First frame of a block (nothing decoded yet), then one per step.
    Frame { job: u64, frame: Frame },
    /// The job finished: the whole buffer and the confidence of each position.
    Done { job: u64, tokens: Vec<u32>, confidence: Vec<f32>, prompt: Vec<bool> },
}

/// Commands to the generation worker.
pub enum GenCommand {
    Run(GenJob),
    /// Swap in another model (e.g. one just trained).
    Model(Box<dyn Denoiser + Send>),
}

/// Spawns the generation worker. It hands each message to `send`, which says whether anyone still
/// listens, and ends when no one does or the command channel closes.
pub fn spawn_generator(mut model: Box<dyn Denoiser + Send>, commands: Receiver<GenCommand>, send: impl Fn(GenMsg) -> bool + Send + 'static) {
    thread::Builder::new()
        .name("generator".into())
        .spawn(move || {
            let mut pending: Option<GenJob> = None;
            loop {
                let job = match pending.take() {
                    Some(job) => job,
                    None => match commands.recv() {
                        Ok(GenCommand::Run(job)) => job,
                        Ok(GenCommand::Model(m)) => {
                            model = m;
                            continue;
                        }
                        Err(_) => return,
                    },
                };
                let mut generation = Generation::for_model(model.as_ref(), &job.prompt, job.length, job.overlap, job.options);
                'steps: loop {
                    match commands.try_recv() {
                        Ok(GenCommand::Run(next)) => {
                            pending = Some(next);
                            break 'steps;
                        }
                        Ok(GenCommand::Model(m)) => model = m,
                        Err(TryRecvError::Empty) => {}
                        Err(TryRecvError::Disconnected) => return,
                    }
                    if let Some(initial) = generation.begin_block() {
                        if !send(GenMsg::Frame { job: job.id, frame: initial }) {
                            return;
                        }
                    }
                    match generation.step(model.as_ref()) {
                        Some(frame) => {
                            if !send(GenMsg::Frame { job: job.id, frame }) {
                                return;
                            }
                        }
                        None => {
                            let done = GenMsg::Done {
                                job: job.id,
                                tokens: generation.tokens().to_vec(),
                                confidence: generation.confidence().to_vec(),
                                prompt: generation.prompt_mask().to_vec(),
                            };
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
