//! Choosing where tensors live: `--device flex|ndarray|wgpu|cuda`.

use anyhow::{Result, bail};
use burn::prelude::Device;
#[cfg(feature = "wgpu")]
use burn::tensor::wgpu::WgpuBackend;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Backend {
    /// Burn's pure-Rust CPU backend (the default).
    #[default]
    Flex,
    /// burn-ndarray (build with `--features ndarray`).
    Ndarray,
    /// GPU through wgpu: Vulkan, Metal or DX12 (build with `--features wgpu`).
    Wgpu,
    /// NVIDIA GPU through CUDA (build with `--features cuda`; needs the CUDA driver at run time).
    Cuda,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }

    pub fn device(self) -> Result<Device> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)] // still offered for comparison; flex is the default
            Backend::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => wgpu_device(),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(Device::cuda(0)),
            #[allow(unreachable_patterns)]
            other => bail!(
                "this build has no {0} backend; rebuild with `cargo build --release --features {0}`",
                other.name()
            ),
        }
    }
}

/// How long finding a GPU adapter may take before we say there is none.
#[cfg(feature = "wgpu")]
const ADAPTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The graphics APIs `--device wgpu` tries, in turn. OpenGL is left out: where no Vulkan driver
/// is installed, wgpu falls back to Mesa's OpenGL, and Burn's kernels deadlocked there in the
/// first matrix product (seen with Mesa 22.3).
#[cfg(all(feature = "wgpu", target_os = "macos"))]
const GRAPHICS_APIS: &[WgpuBackend] = &[WgpuBackend::Metal];
#[cfg(all(feature = "wgpu", not(target_os = "macos")))]
const GRAPHICS_APIS: &[WgpuBackend] = &[WgpuBackend::Vulkan, WgpuBackend::Dx12];

/// The first adapter of `GRAPHICS_APIS`, brought up now: Burn's lazy device would otherwise fail
/// inside its server thread on the first tensor, and leave the caller waiting for ever. Brought
/// up once per process (a second registration of the same device is refused).
#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device> {
    static DEVICE: std::sync::OnceLock<Result<Device, String>> = std::sync::OnceLock::new();
    DEVICE.get_or_init(|| init_wgpu().map_err(|e| e.to_string())).clone().map_err(anyhow::Error::msg)
}

#[cfg(feature = "wgpu")]
fn init_wgpu() -> Result<Device> {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut why = Vec::new();
        for &api in GRAPHICS_APIS {
            match Device::wgpu_options().graphics_api(api).init() {
                Ok(device) => {
                    let _ = send.send(Ok(device));
                    return;
                }
                Err(e) => why.push(format!("{api:?}: {e}")),
            }
        }
        let _ = send.send(Err(why.join("; ")));
    });
    let why = match receive.recv_timeout(ADAPTER_TIMEOUT) {
        Ok(Ok(device)) => return Ok(device),
        Ok(Err(why)) => why,
        Err(_) => format!("no adapter answered within {} s", ADAPTER_TIMEOUT.as_secs()),
    };
    bail!(
        "--device wgpu found no GPU adapter ({}). Install your GPU's Vulkan, Metal or DX12 driver \
         (without a GPU, Mesa's software Vulkan driver lavapipe: Debian/Ubuntu package mesa-vulkan-drivers), \
         or run on the CPU with --device flex",
        why.replace('\n', " ")
    )
}
