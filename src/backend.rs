//! Choosing where tensors live: `--device flex|ndarray|wgpu`.

use anyhow::{Result, bail};
use burn::prelude::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Backend {
    /// Burn's pure-Rust CPU backend (the default).
    #[default]
    Flex,
    /// burn-ndarray (build with `--features ndarray`).
    Ndarray,
    /// GPU through wgpu (build with `--features wgpu`).
    Wgpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
        }
    }

    pub fn device(self) -> Result<Device> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)] // still offered for comparison; flex is the default
            Backend::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[allow(unreachable_patterns)]
            other => bail!(
                "this build has no {0} backend; rebuild with `cargo build --release --features {0}`",
                other.name()
            ),
        }
    }
}
