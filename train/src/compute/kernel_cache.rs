//! Where CubeCL, the compiler under Burn's CUDA and wgpu backends, keeps the
//! GPU kernels it compiles, so that the next run of `dsan` does not compile
//! them again.
//!
//! CubeCL 0.10 writes compiled CUDA kernels (PTX) to disk only when its
//! configuration names a compilation cache, and by default it names none:
//! every run recompiles every kernel with NVRTC. `dsan` names
//! [`kernel_cache_dir`], with CubeCL's defaults and its environment overrides
//! (`CUBECL_AUTOTUNE_LEVEL`, ...) for the rest, unless CubeCL has a file of its
//! own to read (`cubecl.toml`, or `burn.toml` for its `[cubecl]` section, in
//! the working directory or a parent): then CubeCL reads that, as it always
//! does. Autotune results persist in CubeCL's own cache already.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use cubecl_runtime::config::cache::CacheConfig;
use cubecl_runtime::config::{CubeClRuntimeConfig, RuntimeConfig};

/// The folder for compiled kernels: `$DSAN_KERNEL_CACHE`, else
/// `$XDG_CACHE_HOME/dsan-ct/kernels`, else `$HOME/.cache/dsan-ct/kernels`;
/// `var` reads the environment.
pub fn kernel_cache_dir(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| {
        var(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    set("DSAN_KERNEL_CACHE")
        .or_else(|| set("XDG_CACHE_HOME").map(|dir| dir.join("dsan-ct/kernels")))
        .or_else(|| set("HOME").map(|dir| dir.join(".cache/dsan-ct/kernels")))
}

/// Whether CubeCL finds a configuration file of its own from `dir`.
fn has_cubecl_file(dir: &Path) -> bool {
    let names = CubeClRuntimeConfig::file_names().iter().chain(
        CubeClRuntimeConfig::section_file_names()
            .iter()
            .map(|(name, _)| name),
    );
    let names: Vec<&str> = names.copied().collect();
    dir.ancestors()
        .any(|folder| names.iter().any(|name| folder.join(name).is_file()))
}

/// Sets CubeCL's configuration for this process, before any GPU work (see
/// the module docs).
pub fn keep_compiled_kernels() {
    if std::env::current_dir().is_ok_and(|dir| has_cubecl_file(&dir)) {
        return;
    }
    let mut config = CubeClRuntimeConfig::default().override_from_env();
    config.compilation.cache =
        kernel_cache_dir(|name| std::env::var_os(name)).map(CacheConfig::File);
    CubeClRuntimeConfig::set(config);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| OsString::from(value))
        }
    }

    #[test]
    fn the_kernel_folder_follows_the_environment() {
        let dir = |pairs| kernel_cache_dir(env(pairs));
        assert_eq!(
            dir(&[("DSAN_KERNEL_CACHE", "/srv/k"), ("HOME", "/home/a")]),
            Some(PathBuf::from("/srv/k"))
        );
        assert_eq!(
            dir(&[("XDG_CACHE_HOME", "/c"), ("HOME", "/home/a")]),
            Some(PathBuf::from("/c/dsan-ct/kernels"))
        );
        assert_eq!(
            dir(&[("DSAN_KERNEL_CACHE", ""), ("HOME", "/home/a")]),
            Some(PathBuf::from("/home/a/.cache/dsan-ct/kernels"))
        );
        assert_eq!(dir(&[]), None);
    }

    #[test]
    fn a_cubecl_file_in_a_parent_folder_is_left_to_cubecl() {
        let root = std::env::temp_dir().join(format!("dsan-cubecl-{}", std::process::id()));
        let inner = root.join("a/b");
        std::fs::create_dir_all(&inner).unwrap();
        assert!(!has_cubecl_file(&inner));
        std::fs::write(root.join("burn.toml"), "[cubecl.compilation]\n").unwrap();
        assert!(has_cubecl_file(&inner));
        std::fs::remove_file(root.join("burn.toml")).unwrap();
        std::fs::write(root.join("a/cubecl.toml"), "").unwrap();
        assert!(has_cubecl_file(&inner));
        assert!(!has_cubecl_file(&root));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
