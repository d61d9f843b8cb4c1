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
    /// NVIDIA GPU through CUDA (build with `--features cuda`; needs the CUDA driver and toolkit at run time).
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
            Backend::Cuda => cuda_device(),
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

/// The first CUDA device, once what Burn's CUDA backend loads on its first tensor is known to be
/// there: that backend panics where the driver, the runtime compiler or the toolkit's headers are
/// missing, and a binary built with `panic = "abort"` (the `dist` profile) would die without a
/// word on what to install.
#[cfg(feature = "cuda")]
fn cuda_device() -> Result<Device> {
    #[cfg(target_os = "linux")]
    if let Some(missing) = cuda::missing() {
        bail!("--device cuda cannot run here: {missing}. Install the NVIDIA driver and the CUDA toolkit, or run on the CPU with --device flex");
    }
    Ok(Device::cuda(0))
}

/// What `--device cuda` needs at run time, looked for as cudarc and CubeCL look for it. (Compiled
/// for the tests too: a build with the `cuda` feature needs a network, which CI does not have.)
#[cfg(all(target_os = "linux", any(feature = "cuda", test)))]
mod cuda {
    use std::ffi::{CString, c_int, c_uint, c_void};
    use std::path::PathBuf;

    /// The first thing missing, in words; `None` when the driver starts, sees a device, and the
    /// runtime compiler and the toolkit's headers are there.
    pub fn missing() -> Option<String> {
        let Some(driver) = open(&["libcuda.so.1", "libcuda.so"]) else {
            return Some("the NVIDIA driver's libcuda.so.1 was not found".into());
        };
        // SAFETY: `driver` is open.
        let (Some(init), Some(count)) = (unsafe { symbol(driver, "cuInit") }, unsafe { symbol(driver, "cuDeviceGetCount") }) else {
            return Some("the NVIDIA driver's libcuda.so.1 lacks cuInit or cuDeviceGetCount".into());
        };
        // SAFETY: the driver API's `CUresult cuInit(unsigned int)` and
        // `CUresult cuDeviceGetCount(int *)`, called as declared.
        let devices = unsafe {
            let init: extern "C" fn(c_uint) -> c_int = std::mem::transmute(init);
            let count: extern "C" fn(*mut c_int) -> c_int = std::mem::transmute(count);
            match init(0) {
                0 => {}
                code => return Some(format!("the CUDA driver did not start (cuInit returned {code}: no NVIDIA GPU, or a driver that does not match its kernel module)")),
            }
            let mut devices = 0;
            match count(&mut devices) {
                0 => devices,
                code => return Some(format!("the CUDA driver could not count its devices (error {code})")),
            }
        };
        if devices == 0 {
            return Some("the CUDA driver sees no GPU".into());
        }
        // cudarc tries these names, among others, for the runtime compiler.
        if open(&["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11"]).is_none() {
            return Some("CUDA's runtime compiler, libnvrtc.so, was not found (add the CUDA toolkit's lib64 directory to LD_LIBRARY_PATH)".into());
        }
        if !toolkit().is_some_and(|dir| dir.join("include").is_dir()) {
            return Some("the CUDA toolkit's headers were not found (set CUDA_PATH to the toolkit: the directory that holds include/)".into());
        }
        None
    }

    /// Where CubeCL looks for the toolkit, in its order (`cubecl_cuda::install::cuda_path`).
    fn toolkit() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("CUDA_PATH") {
            return Some(path.into());
        }
        ["/usr/local/cuda", "/opt/cuda"].into_iter().map(PathBuf::from).find(|p| p.exists()).or_else(|| std::path::Path::new("/usr/bin/nvcc").exists().then(|| "/usr".into()))
    }

    /// The first of `names` the dynamic loader opens.
    pub(super) fn open(names: &[&str]) -> Option<*mut c_void> {
        names.iter().find_map(|name| {
            let name = CString::new(*name).expect("library names have no NUL");
            // SAFETY: a NUL-terminated name; the handle is kept open for the process's life.
            let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
            (!handle.is_null()).then_some(handle)
        })
    }

    /// SAFETY: `library` is a handle from [`open`].
    unsafe fn symbol(library: *mut c_void, name: &str) -> Option<*mut c_void> {
        let name = CString::new(name).expect("symbol names have no NUL");
        let symbol = unsafe { libc::dlsym(library, name.as_ptr()) };
        (!symbol.is_null()).then_some(symbol)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::cuda;

    #[test]
    fn says_which_part_of_cuda_is_missing() {
        match cuda::open(&["libcuda.so.1", "libcuda.so"]) {
            None => {
                let missing = cuda::missing().expect("no driver: something is missing");
                assert!(missing.contains("libcuda.so.1"), "{missing}");
            }
            // A machine with the driver: whatever is reported must be a later requirement.
            Some(_) => assert!(!cuda::missing().is_some_and(|m| m.contains("libcuda.so.1"))),
        }
    }
}
